#include "core/dtype.h"

namespace ep {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::Q8_0:
      return "q8_0";
    case DType::Q4_0:
      return "q4_0";
    case DType::Q4_1:
      return "q4_1";
    case DType::Q5_0:
      return "q5_0";
    case DType::Q5_1:
      return "q5_1";
    case DType::Q2_K:
      return "q2_k";
    case DType::Q3_K:
      return "q3_k";
    case DType::Q4_K:
      return "q4_k";
    case DType::Q5_K:
      return "q5_k";
    case DType::Q6_K:
      return "q6_k";
  }
  return "?";
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (DType t :
       {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
        DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K}) {
    if (dtype_name(t) == name) return t;
  }
  return std::nullopt;
}

std::optional<DType> dtype_from_ggml_id(uint32_t id) {
  switch (id) {
    case 0:
      return DType::F32;
    case 1:
      return DType::F16;
    case 2:
      return DType::Q4_0;
    case 3:
      return DType::Q4_1;
    case 6:
      return DType::Q5_0;
    case 7:
      return DType::Q5_1;
    case 8:
      return DType::Q8_0;
    case 10:
      return DType::Q2_K;
    case 11:
      return DType::Q3_K;
    case 12:
      return DType::Q4_K;
    case 13:
      return DType::Q5_K;
    case 14:
      return DType::Q6_K;
    case 30:
      return DType::BF16;
    default:
      return std::nullopt;
  }
}

std::string_view ggml_type_name(uint32_t id) {
  // Names as ggml prints them, so users can match an error to their converter's output.
  static constexpr std::string_view kNames[] = {"F32",
                                                "F16",
                                                "Q4_0",
                                                "Q4_1",
                                                "Q4_2 (removed)",
                                                "Q4_3 (removed)",
                                                "Q5_0",
                                                "Q5_1",
                                                "Q8_0",
                                                "Q8_1",
                                                "Q2_K",
                                                "Q3_K",
                                                "Q4_K",
                                                "Q5_K",
                                                "Q6_K",
                                                "Q8_K",
                                                "IQ2_XXS",
                                                "IQ2_XS",
                                                "IQ3_XXS",
                                                "IQ1_S",
                                                "IQ4_NL",
                                                "IQ3_S",
                                                "IQ2_S",
                                                "IQ4_XS",
                                                "I8",
                                                "I16",
                                                "I32",
                                                "I64",
                                                "F64",
                                                "IQ1_M",
                                                "BF16",
                                                "Q4_0_4_4",
                                                "Q4_0_4_8",
                                                "Q4_0_8_8",
                                                "TQ1_0",
                                                "TQ2_0",
                                                "IQ4_NL_4_4",
                                                "IQ4_NL_4_8",
                                                "IQ4_NL_8_8",
                                                "MXFP4"};
  if (id < std::size(kNames)) return kNames[id];
  return "unknown";
}

}  // namespace ep

// Streams the same greedy chat requests from each server given on the command line with the
// official OpenAI client, and prints one JSON object: for each server, every request's streamed
// text, its chunk count, its finish reason and the usage of the final chunk.
//   node stream_chats.mjs CLOUD_PROMPT_ID BASE_URL...
import OpenAI from "openai";

const [cloudPrompt, ...servers] = process.argv.slice(2);
const words = ["river", "lantern", "gravity", "meadow", "velvet", "ancient"];

async function streamOne(client, word) {
  const stream = await client.chat.completions.create({
    model: "edgeprompt",
    messages: [{ role: "user", content: `What does "${word}" mean?` }],
    temperature: 0,
    max_tokens: 12,
    stream: true,
    stream_options: { include_usage: true },
    cloud_prompt: cloudPrompt,  // not in the client's types: passed through in the body
  });
  let text = "", chunks = 0, finish = null, usage = null;
  for await (const chunk of stream) {
    chunks += 1;
    const choice = chunk.choices[0];
    if (choice?.delta?.content) text += choice.delta.content;
    if (choice?.finish_reason) finish = choice.finish_reason;
    if (chunk.usage) usage = chunk.usage;
  }
  return { text, chunks, finish, usage };
}

const out = {};
for (const base of servers) {
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
  out[base] = await Promise.all(words.map((w) => streamOne(client, w)));
}
console.log(JSON.stringify(out));

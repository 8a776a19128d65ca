// Helper of bench/sdk_latency.py: times the first audio chunk of one streamed request per line on stdin,
// through the official JS SDKs (from tests/sdk/js/node_modules) or plain fetch.
//   stdin:  {"client": "js-openai" | "js-elevenlabs" | "fetch-openai" | "fetch-elevenlabs", "text": "..."}
//   stdout: {"first_s": seconds to the first non-empty chunk, "total_s": seconds to the end, "bytes": total bytes}
//   node bench/sdk_latency.mjs BASE_URL API_KEY

import { createRequire } from "node:module";
import readline from "node:readline";

const require = createRequire(new URL("../tests/sdk/js/package.json", import.meta.url));
const OpenAI = require("openai").default ?? require("openai");
const { ElevenLabsClient } = require("@elevenlabs/elevenlabs-js");

const [baseUrl, apiKey] = process.argv.slice(2);
const openai = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey, maxRetries: 0 });
const elevenlabs = new ElevenLabsClient({ baseUrl, apiKey, maxRetries: 0 });
const json = { "content-type": "application/json" };

const open = {
  "js-openai": async (text) =>
    (await openai.audio.speech.create({ model: "tts-1", voice: "jm_kumo", input: text, response_format: "pcm", stream: true })).body,
  "js-elevenlabs": async (text) => elevenlabs.textToSpeech.stream("jm_kumo", { text, outputFormat: "pcm_24000" }),
  "fetch-openai": async (text) =>
    (await fetch(`${baseUrl}/v1/audio/speech`, {
      method: "POST", headers: { ...json, authorization: `Bearer ${apiKey}` },
      body: JSON.stringify({ model: "tts-1", voice: "jm_kumo", input: text, response_format: "pcm", stream: true }),
    })).body,
  "fetch-elevenlabs": async (text) =>
    (await fetch(`${baseUrl}/v1/text-to-speech/jm_kumo/stream?output_format=pcm_24000`, {
      method: "POST", headers: { ...json, "xi-api-key": apiKey }, body: JSON.stringify({ text }),
    })).body,
};

for await (const line of readline.createInterface({ input: process.stdin })) {
  const { client, text } = JSON.parse(line);
  const started = performance.now();
  let first = null;
  let bytes = 0;
  for await (const chunk of await open[client](text)) {
    if (chunk.length && first === null) first = (performance.now() - started) / 1000;
    bytes += chunk.length;
  }
  const total = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ first_s: first, total_s: total, bytes })}\n`);
}

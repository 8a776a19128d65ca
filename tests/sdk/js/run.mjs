// Drives a live voxclone with the official JavaScript SDKs (`openai`, `@elevenlabs/elevenlabs-js`, pinned in
// package-lock.json): every call in ../calls.json whose `js` is set, in order. It only records what each call
// returned (audio goes to files in OUT_DIR); tests/test_sdk_js.py holds the assertions.
//
//   node run.mjs BASE_URL API_KEY OUT_DIR CLIP   ->  OUT_DIR/results.json  {id: {ok, ...observations}}

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ElevenLabsClient, ElevenLabsError } from "@elevenlabs/elevenlabs-js";
import OpenAI from "openai";

const [baseUrl, apiKey, outDir, clip] = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const calls = JSON.parse(fs.readFileSync(path.join(here, "..", "calls.json"), "utf8")).calls;
const openai = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey, maxRetries: 0 });
const elevenlabs = new ElevenLabsClient({ baseUrl, apiKey, maxRetries: 0 });
const TEXT = "Hello there, and welcome.";
const TWO_SENTENCES = "Hello there, and welcome to the show. We have a great deal to talk about today.";

function save(id, bytes) {
  const file = path.join(outDir, `${id}.bin`);
  fs.writeFileSync(file, bytes);
  return file;
}

async function chunksOf(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return chunks;
}

function caught(error) {
  if (error instanceof OpenAI.APIError) {
    return { class: error.constructor.name, status: error.status, code: error.code, type: error.type, body: error.error };
  }
  if (error instanceof ElevenLabsError) {
    return { class: error.constructor.name, status: error.statusCode, body: error.body };
  }
  throw error;
}

async function expectError(call) {
  try {
    await call();
  } catch (error) {
    return caught(error);
  }
  throw new Error("the call succeeded; an error was expected");
}

async function clone(name, extra = {}) {
  const { voiceId } = await elevenlabs.voices.ivc.create({ name, files: [fs.createReadStream(clip)], ...extra });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const voice = await elevenlabs.voices.get(voiceId);
    if (voice.status !== "enrolling") return { voiceId, status: voice.status };
    if (Date.now() > deadline) throw new Error("enrolment did not finish");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function pcmSeconds(voiceId, extra = {}) {
  const stream = await elevenlabs.textToSpeech.convert(voiceId, { text: TWO_SENTENCES, outputFormat: "pcm_16000", ...extra });
  return Buffer.concat(await chunksOf(stream)).length / 2 / 16_000;
}

const speech = (format) => async (id) => {
  const response = await openai.audio.speech.create({ model: "tts-1", voice: "tiny_tone", input: TEXT, response_format: format });
  return { audio: save(id, Buffer.from(await response.arrayBuffer())) };
};

const CHECKS = {
  "openai.speech.mp3": speech("mp3"),
  "openai.speech.opus": speech("opus"),
  "openai.speech.aac": speech("aac"),
  "openai.speech.flac": speech("flac"),
  "openai.speech.wav": speech("wav"),
  "openai.speech.pcm": speech("pcm"),
  "openai.speech.stream": async (id) => {
    const response = await openai.audio.speech.create({
      model: "tts-1", voice: "tiny_tone", input: TWO_SENTENCES, response_format: "pcm", stream: true,
    });
    const chunks = await chunksOf(response.body);
    return { chunks: chunks.length, audio: save(id, Buffer.concat(chunks)) };
  },
  "openai.speech.sse": async (id) => {
    const response = await openai.audio.speech.create({
      model: "gpt-4o-mini-tts", voice: "alloy", input: TEXT, response_format: "pcm", stream_format: "sse",
    });
    const events = (await response.text()).split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)));
    const audio = Buffer.concat(events.filter((e) => e.type === "speech.audio.delta").map((e) => Buffer.from(e.audio, "base64")));
    return { types: events.map((e) => e.type), audio: save(id, audio) };
  },
  "openai.models.list": async () => {
    const models = [];
    for await (const model of openai.models.list()) models.push(model);
    return { models };
  },
  "openai.error.not_found": async () =>
    expectError(() => openai.audio.speech.create({ model: "tts-1", voice: "nobody-here", input: TEXT })),
  "openai.error.auth": async () => {
    const wrong = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: "not-the-key", maxRetries: 0 });
    return expectError(() => wrong.audio.speech.create({ model: "tts-1", voice: "tiny_tone", input: TEXT }));
  },

  "elevenlabs.tts.convert": async (id) => {
    const stream = await elevenlabs.textToSpeech.convert("tiny_tone", { text: TEXT, modelId: "eleven_multilingual_v2" });
    return { audio: save(id, Buffer.concat(await chunksOf(stream))) };
  },
  "elevenlabs.tts.convert_pcm": async () => ({
    normal: await pcmSeconds("tiny_tone", { voiceSettings: { speed: 1.0, stability: 0.5 } }),
    fast: await pcmSeconds("tiny_tone", { voiceSettings: { speed: 2.0, stability: 0.5 } }),
  }),
  "elevenlabs.tts.stream": async (id) => {
    const stream = await elevenlabs.textToSpeech.stream("tiny_tone", { text: TWO_SENTENCES, outputFormat: "pcm_24000" });
    const chunks = await chunksOf(stream);
    return { chunks: chunks.length, audio: save(id, Buffer.concat(chunks)) };
  },
  "elevenlabs.voices.get_all": async () => ({ voices: (await elevenlabs.voices.getAll()).voices }),
  "elevenlabs.voices.search": async () => {
    const pages = [];
    let nextPageToken;
    do {
      const page = await elevenlabs.voices.search({ pageSize: 2, nextPageToken, sort: "name" });
      pages.push({ ids: page.voices.map((v) => v.voiceId), hasMore: page.hasMore, totalCount: page.totalCount });
      nextPageToken = page.hasMore ? page.nextPageToken : undefined;
    } while (nextPageToken);
    const found = (await elevenlabs.voices.search({ search: "kumo" })).voices.map((v) => v.voiceId);
    const premade = (await elevenlabs.voices.search({ category: "premade", pageSize: 100 })).voices.map((v) => v.category);
    return { pages, found, premade, all: (await elevenlabs.voices.getAll()).voices.map((v) => v.voiceId) };
  },
  "elevenlabs.voices.get": async () => ({ voice: await elevenlabs.voices.get("jf_alpha") }),
  "elevenlabs.voices.ivc.create": async (id) => {
    const { voiceId, status } = await clone("JS clone");
    const voice = await elevenlabs.voices.get(voiceId);
    const stream = await elevenlabs.textToSpeech.convert(voiceId, { text: TEXT });
    return { voiceId, status, voice, audio: save(id, Buffer.concat(await chunksOf(stream))) };
  },
  "elevenlabs.voices.ivc.create_duplicate": async () => {
    const first = await clone("JS twin", { labels: { accent: "american" } });
    const second = await clone("js twin", { description: "the other one" });
    return { first: first.voiceId, second: second.voiceId, byName: await expectError(() => elevenlabs.voices.get("JS twin")) };
  },
  "elevenlabs.voices.update": async () => {
    const { voiceId } = await clone("JS before");
    const answer = await elevenlabs.voices.update(voiceId, { name: "JS after", description: "renamed", labels: { accent: "british" } });
    const voice = await elevenlabs.voices.get(voiceId);
    return { status: answer.status, name: voice.name, description: voice.description, labels: voice.labels };
  },
  "elevenlabs.voices.delete": async () => {
    const { voiceId } = await clone("JS short-lived");
    const answer = await elevenlabs.voices.delete(voiceId);
    return { status: answer.status, after: await expectError(() => elevenlabs.voices.get(voiceId)) };
  },
  "elevenlabs.voices.settings.get_default": async () => ({ settings: await elevenlabs.voices.settings.getDefault() }),
  "elevenlabs.voices.settings.get": async () => ({ settings: await elevenlabs.voices.settings.get("jf_alpha") }),
  "elevenlabs.voices.settings.update": async () => {
    const { voiceId } = await clone("JS quick talker");
    const before = await pcmSeconds(voiceId);
    const answer = await elevenlabs.voices.settings.update(voiceId, { speed: 2.0, stability: 0.3 });
    return {
      status: answer.status,
      settings: await elevenlabs.voices.settings.get(voiceId),
      before,
      after: await pcmSeconds(voiceId),
      asked: await pcmSeconds(voiceId, { voiceSettings: { speed: 1.0 } }),
    };
  },
  "elevenlabs.models.list": async () => ({ models: await elevenlabs.models.list() }),
  "elevenlabs.user.subscription.get": async () => {
    const before = await elevenlabs.user.subscription.get();
    await chunksOf(await elevenlabs.textToSpeech.convert("tiny_tone", { text: "Counting these characters." }));
    const after = await elevenlabs.user.subscription.get();
    const clones = (await elevenlabs.voices.getAll()).voices.filter((v) => v.category === "cloned").length;
    return { before, after, clones };
  },
  "elevenlabs.error.not_found": async () => expectError(() => elevenlabs.voices.get("nobody-here")),
  "elevenlabs.error.auth": async () => {
    const wrong = new ElevenLabsClient({ baseUrl, apiKey: "not-the-key", maxRetries: 0 });
    return expectError(() => wrong.voices.getAll());
  },
};

const results = {};
for (const call of calls.filter((c) => c.js)) {
  const check = CHECKS[call.id];
  try {
    if (!check) throw new Error(`run.mjs has no check for ${call.id}`);
    results[call.id] = { ok: true, ...(await check(call.id)) };
  } catch (error) {
    results[call.id] = { ok: false, error: String(error?.stack ?? error) };
  }
}
fs.writeFileSync(path.join(outDir, "results.json"), JSON.stringify(results, null, 1));

// voxclone's page: speak with streaming playback, clone from uploads or the microphone.
// Plain ES module, no build step. Talks to the server it was served from (or the one saved in
// settings). Every URL is relative to the page, so it also works under a proxy's sub-path
// (https://host/voice/).

import { Conversation } from "./talk.js";

const $ = (id) => document.getElementById(id);
const store = window.localStorage;
const DEMO_SENTENCE = "Hello! This is my cloned voice, reading a sentence it has never heard before.";

const api = {
  base: () => (store.getItem("voxclone.api") || "").replace(/\/$/, ""),
  key: () => store.getItem("voxclone.key") || "",
  // The server's root: the saved one, else the folder this page was served from.
  root: () => (api.base() ? `${api.base()}/` : new URL(".", window.location.href).href),
  url: (path) => new URL(path.replace(/^\//, ""), api.root()).href,

  // fetch with the saved key; on 401 ask for a key once and retry.
  async fetch(path, options = {}, retried = false) {
    const headers = new Headers(options.headers || {});
    if (api.key()) headers.set("Authorization", `Bearer ${api.key()}`);
    const response = await fetch(api.url(path), { ...options, headers });
    if (response.status === 401 && !retried && (await askForKey())) return api.fetch(path, options, true);
    if (!response.ok) throw new Error(await errorMessage(response));
    return response;
  },
  async json(path, options) {
    return (await api.fetch(path, options)).json();
  },
};

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body?.detail?.message || body?.error?.message || `${response.status} ${response.statusText}`;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

function askForKey() {
  const dialog = $("key-dialog");
  $("key-input").value = api.key();
  $("api-base").value = api.base();
  return new Promise((resolve) => {
    const done = (saved) => {
      dialog.removeEventListener("close", onClose);
      resolve(saved);
    };
    const onClose = () => {
      if (dialog.returnValue === "save" && $("key-input").value.trim()) {
        store.setItem("voxclone.key", $("key-input").value.trim());
        store.setItem("voxclone.api", $("api-base").value.trim());
        done(true);
      } else done(false);
    };
    dialog.addEventListener("close", onClose);
    dialog.returnValue = "";
    dialog.showModal();
  });
}

function show(element, message) {
  element.textContent = message || "";
  element.hidden = !message;
}

// ---- voices -------------------------------------------------------------------------------

let voices = [];

function describe(voice) {
  const labels = Object.values(voice.labels || {}).filter(Boolean).join(", ");
  const state = voice.status === "ready" ? "" : ` — ${voice.status}`;
  return `${voice.name}${labels ? ` (${labels})` : ""}${state}`;
}

// Engines by name as people know them; any other engine shows its own name.
const CATEGORY_ORDER = ["cloned", "file", "remote", "premade"];
let engines = {};

// Every engine's state from /health (which answers 503 while the default voice loads: still read it).
async function loadEngines() {
  try {
    const headers = api.key() ? { Authorization: `Bearer ${api.key()}` } : {};
    const response = await fetch(api.url("/health"), { headers });
    engines = (await response.json()).engines || {};
  } catch {
    engines = {};
  }
  renderUnavailable();
}

const engineTitle = (engine) => engines[engine]?.title || engine;
const usable = (engine) => !engines[engine] || ["ready", "not_loaded"].includes(engines[engine].state);

function renderUnavailable() {
  const list = $("unavailable");
  list.replaceChildren();
  for (const [name, info] of Object.entries(engines)) {
    if (usable(name)) continue;
    const item = document.createElement("li");
    const title = document.createElement("strong");
    title.textContent = engineTitle(name);
    const why = document.createElement("span");
    why.textContent = ` — ${info.state.replace("_", " ")}${info.detail ? `: ${info.detail}` : ""}`;
    item.append(title, why);
    if (info.fix) {
      const fix = document.createElement("code");
      fix.textContent = info.fix;
      item.append(document.createElement("br"), "To enable: ", fix);
    }
    list.append(item);
  }
  $("engines-box").hidden = !list.children.length;
}

async function loadVoices(select) {
  voices = (await api.json("/v1/voices")).voices;
  await loadEngines();
  const picker = $("voice");
  const previous = select || picker.value;
  picker.replaceChildren();
  const byEngine = new Map();
  for (const voice of voices) byEngine.set(voice.engine, [...(byEngine.get(voice.engine) || []), voice]);
  for (const [engine, members] of byEngine) {
    const group = document.createElement("optgroup");
    group.label = engineTitle(engine);
    group.dataset.engine = engine;
    members.sort((a, b) => CATEGORY_ORDER.indexOf(a.category) - CATEGORY_ORDER.indexOf(b.category));
    for (const voice of members) {
      const option = new Option(describe(voice) + (usable(engine) ? "" : " — unavailable"), voice.voice_id);
      option.disabled = voice.status !== "ready" || !usable(engine);
      group.append(option);
    }
    picker.append(group);
  }
  const ready = voices.filter((v) => v.status === "ready" && usable(v.engine));
  picker.value = ready.some((v) => v.voice_id === previous) ? previous : ready.find((v) => v.voice_id === "jm_kumo")?.voice_id || ready[0]?.voice_id || "";
  renderMyVoices();
}

function renderMyVoices() {
  const list = $("my-voices");
  list.replaceChildren();
  for (const voice of voices.filter((v) => v.category === "cloned")) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    const score = voice.scores?.similarity != null ? ` · similarity ${voice.scores.similarity.toFixed(2)}` : "";
    name.textContent = `${voice.name} — ${voice.status}${score}`;
    const add = document.createElement("input");
    add.type = "file";
    add.accept = "audio/*";
    add.multiple = true;
    add.id = `add-${voice.voice_id}`;
    add.className = "visually-hidden";
    add.hidden = true;
    const addLabel = document.createElement("label");
    addLabel.htmlFor = add.id;
    addLabel.className = "ghost";
    addLabel.tabIndex = 0;
    addLabel.textContent = "Add samples";
    addLabel.setAttribute("role", "button");
    addLabel.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && add.click());
    add.addEventListener("change", () => addSamples(voice, add.files));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "ghost";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete voice ${voice.name}`);
    remove.addEventListener("click", () => deleteVoice(voice));
    item.append(name, addLabel, add, remove);
    list.append(item);
  }
}

async function deleteVoice(voice) {
  if (!window.confirm(`Delete the voice "${voice.name}"?`)) return;
  try {
    await api.fetch(`/v1/voices/${encodeURIComponent(voice.voice_id)}`, { method: "DELETE" });
    await loadVoices();
  } catch (error) {
    show($("clone-error"), error.message);
  }
}

async function addSamples(voice, files) {
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  try {
    await api.fetch(`/v1/voices/${encodeURIComponent(voice.voice_id)}/edit`, { method: "POST", body: form });
    await followEnrolment(voice.voice_id);
  } catch (error) {
    show($("clone-error"), error.message);
  }
}

// ---- speaking -----------------------------------------------------------------------------

const history = [];

// Play an mp3 response while it downloads (MediaSource), and keep all its bytes as a Blob.
async function playStreaming(response, player) {
  const chunks = [];
  const reader = response.body.getReader();
  const canStream = window.MediaSource && MediaSource.isTypeSupported("audio/mpeg");
  if (!canStream) {
    for (let r = await reader.read(); !r.done; r = await reader.read()) chunks.push(r.value);
    const blob = new Blob(chunks, { type: "audio/mpeg" });
    player.src = URL.createObjectURL(blob);
    await player.play();
    return blob;
  }
  const source = new MediaSource();
  player.src = URL.createObjectURL(source);
  await new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
  const buffer = source.addSourceBuffer("audio/mpeg");
  let started = false;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    chunks.push(r.value);
    buffer.appendBuffer(r.value);
    await new Promise((resolve) => buffer.addEventListener("updateend", resolve, { once: true }));
    if (!started) {
      started = true;
      player.play().catch(() => {}); // starts as soon as the first audio is buffered
    }
  }
  source.endOfStream();
  return new Blob(chunks, { type: "audio/mpeg" });
}

function remember(text, voiceName, blob) {
  const url = URL.createObjectURL(blob);
  history.unshift({ text, voiceName, url });
  history.splice(8);
  const list = $("history");
  list.replaceChildren();
  for (const clip of history) {
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = `${clip.voiceName}: “${clip.text.slice(0, 60)}${clip.text.length > 60 ? "…" : ""}”`;
    const play = document.createElement("button");
    play.type = "button";
    play.className = "ghost";
    play.textContent = "Play";
    play.setAttribute("aria-label", `Play ${label.textContent}`);
    play.addEventListener("click", () => {
      $("player").src = clip.url;
      $("player").play();
    });
    const save = document.createElement("a");
    save.href = clip.url;
    save.download = "voxclone.mp3";
    save.className = "ghost";
    save.textContent = "Save";
    item.append(label, play, save);
    list.append(item);
  }
}

async function speak(event) {
  event.preventDefault();
  const button = $("speak-button");
  const text = $("prompt").value.trim();
  const voice = $("voice").value;
  show($("speak-error"), "");
  if (!text || !voice) return show($("speak-error"), "Type some text and pick a voice.");
  button.disabled = true;
  $("speak-busy").hidden = false;
  document.body.dataset.speaking = "busy";
  $("speak-status").textContent = "Synthesising…";
  try {
    const started = performance.now();
    const response = await api.fetch("/v1/audio/speech", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "tts-1", input: text, voice, response_format: "mp3", speed: Number($("speed").value), stream: true }),
    });
    $("player").addEventListener("playing", () => {
      $("speak-status").textContent = `Playing (first audio after ${((performance.now() - started) / 1000).toFixed(2)} s)`;
      document.body.dataset.speaking = "playing";
    }, { once: true });
    const blob = await playStreaming(response, $("player"));
    const download = $("download");
    download.href = URL.createObjectURL(blob);
    download.hidden = false;
    remember(text, $("voice").selectedOptions[0]?.textContent || voice, blob);
  } catch (error) {
    show($("speak-error"), `Could not speak: ${error.message}`);
    $("speak-status").textContent = "";
    document.body.dataset.speaking = "error";
  } finally {
    button.disabled = false;
    $("speak-busy").hidden = true;
  }
}

// ---- recording and cloning ----------------------------------------------------------------

let recorder = null;
let recordings = [];

// Record from the microphone with `button` as the start/stop toggle; `done(file)` gets the recording.
async function toggleRecorder(button, label, name, started, done) {
  if (recorder) {
    if (recorder.button === button) recorder.stop();
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const parts = [];
    recorder = new MediaRecorder(stream);
    recorder.button = button;
    recorder.addEventListener("dataavailable", (e) => parts.push(e.data));
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((t) => t.stop());
      const type = recorder.mimeType || "audio/webm";
      recorder = null;
      button.textContent = label;
      button.setAttribute("aria-pressed", "false");
      done(new File(parts, `${name}.webm`, { type }));
    });
    recorder.start();
    button.textContent = "■ Stop";
    button.setAttribute("aria-pressed", "true");
    started();
  } catch (error) {
    show($("clone-error"), `Microphone unavailable: ${error.message}`);
  }
}

function toggleRecording() {
  toggleRecorder($("record-button"), "● Record", `recording-${recordings.length + 1}`,
    () => ($("record-status").textContent = "Recording… read something aloud for 20–30 seconds"),
    (file) => {
      recordings.push(file);
      $("record-status").textContent = `${recordings.length} recording(s) ready`;
    });
}

// ---- consent: the person cloned reads a fresh sentence, checked by the server -------------

let challenge = null;
let consentRecording = null;

async function newChallenge() {
  consentRecording = null;
  $("consent-status").textContent = "";
  try {
    challenge = await api.json("/v1/voices/consent-challenge");
    $("consent-text").textContent = `“${challenge.text}”`;
    $("consent-need").textContent = challenge.required ? "This server clones only with it." : "Optional on this server.";
    $("consent-box").hidden = false;
  } catch (error) {
    challenge = null;
    $("consent-text").textContent = `No sentence: ${error.message}`;
  }
}

function toggleConsent() {
  if (!challenge || challenge.expires_at_unix * 1000 < Date.now()) {
    newChallenge();
    return;
  }
  toggleRecorder($("consent-record"), "● Record the sentence", "consent",
    () => ($("consent-status").textContent = "Recording… read the sentence above, then press Stop"),
    (file) => {
      consentRecording = file;
      $("consent-status").textContent = "Sentence recorded";
      show($("clone-error"), "");
    });
}

async function followEnrolment(voiceId) {
  const box = $("clone-progress-box");
  const bar = $("clone-progress");
  box.hidden = false;
  for (;;) {
    const voice = await api.json(`/v1/voices/${encodeURIComponent(voiceId)}`);
    bar.value = voice.progress;
    $("clone-status").textContent = voice.status === "enrolling" ? `Enrolling… ${Math.round(voice.progress * 100)}%` : `Voice “${voice.name}” is ${voice.status}`;
    if (voice.status !== "enrolling") {
      await loadVoices(voice.status === "ready" ? voice.voice_id : undefined);
      if (voice.status === "failed") throw new Error(voice.error || "enrolment failed");
      return voice;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function showResult(voice, transcript) {
  const scores = $("scores");
  scores.replaceChildren();
  const rows = [
    ["Similarity to the reference", voice.scores.similarity],
    ["Nearest stock voice", voice.scores.baseline_similarity],
    ["Intelligibility (word error rate)", voice.scores.wer],
  ];
  for (const [name, value] of rows) {
    if (value == null) continue;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = Number(value).toFixed(3);
    scores.append(dt, dd);
  }
  const sample = voice.samples?.[0];
  if (sample) {
    const ref = await api.fetch(`/v1/voices/${voice.voice_id}/samples/${sample.sample_id}/audio`);
    $("ab-reference").src = URL.createObjectURL(await ref.blob());
  }
  const clone = await api.fetch("/v1/audio/speech", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ input: transcript || DEMO_SENTENCE, voice: voice.voice_id, response_format: "mp3" }),
  });
  $("ab-clone").src = URL.createObjectURL(await clone.blob());
  $("clone-result").hidden = false;
}

async function cloneVoice(event) {
  event.preventDefault();
  const button = $("clone-button");
  show($("clone-error"), "");
  const files = [...$("clone-files").files, ...recordings];
  if (!files.length) return show($("clone-error"), "Choose a recording or record one first.");
  const form = new FormData();
  form.append("name", $("clone-name").value.trim());
  const labels = { gender: $("clone-gender").value.trim(), accent: $("clone-accent").value.trim() };
  form.append("labels", JSON.stringify(Object.fromEntries(Object.entries(labels).filter(([, v]) => v))));
  for (const file of files) {
    form.append("files", file, file.name);
    form.append("transcripts", $("clone-transcript").value.trim());
  }
  if (challenge?.required && !consentRecording) return show($("clone-error"), "Record the person reading the sentence first.");
  if (consentRecording && challenge) {
    form.append("consent_challenge_id", challenge.challenge_id);
    form.append("consent", consentRecording, consentRecording.name);
  }
  button.disabled = true;
  $("clone-result").hidden = true;
  try {
    const { voice_id } = await api.json("/v1/voices/add", { method: "POST", body: form });
    const voice = await followEnrolment(voice_id);
    recordings = [];
    $("record-status").textContent = "";
    await showResult(voice, $("clone-transcript").value.trim());
  } catch (error) {
    show($("clone-error"), `Could not clone: ${error.message}`);
  } finally {
    button.disabled = false;
    if (consentRecording) newChallenge(); // a sentence is good for one attempt
  }
}

// ---- talking ------------------------------------------------------------------------------

let conversation = null;

function logLine(role, text, id) {
  let item = id ? document.querySelector(`#talk-log li[data-id="${id}"]`) : null;
  if (!item) {
    item = document.createElement("li");
    item.className = role;
    if (id) item.dataset.id = id;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "user" ? "You" : $("voice").selectedOptions[0]?.textContent || "Voice";
    const words = document.createElement("span");
    words.className = "words";
    item.append(who, words);
    $("talk-log").append(item);
  }
  item.querySelector(".words").textContent = text;
  item.scrollIntoView({ block: "nearest" });
}

function onTalkEvent(event) {
  const body = document.body.dataset;
  switch (event.type) {
    case "session.created":
      $("talk-mode").textContent = event.session.replies === "echo" ? "No chat model is configured here: it says back what you say, in the voice." : "";
      break;
    case "session.updated":
      body.talk = "listening";
      $("talk-status").textContent = $("talk-hands-free").checked ? "Listening… just speak." : "Hold the button while you speak.";
      break;
    case "input_audio_buffer.speech_started":
      body.talk = "hearing";
      $("talk-status").textContent = "Hearing you…";
      break;
    case "conversation.item.input_audio_transcription.completed":
      if (event.transcript) logLine("user", event.transcript, event.item_id);
      break;
    case "response.audio.delta":
      body.talk = "replying";
      body.talkAudio = String(Number(body.talkAudio || 0) + 1);
      $("talk-status").textContent = "Replying…";
      break;
    case "response.audio_transcript.delta": {
      const item = document.querySelector(`#talk-log li[data-id="${event.item_id}"] .words`);
      logLine("assistant", `${item?.textContent || ""}${event.delta}`, event.item_id);
      break;
    }
    case "response.done": {
      const output = event.response.output?.[0];
      const text = output?.content?.[0]?.transcript || "";
      if (output && text) logLine("assistant", event.response.status === "cancelled" ? `${text} …(interrupted)` : text, output.id);
      body.talk = "listening";
      $("talk-status").textContent = "Listening…";
      break;
    }
    case "error":
      show($("talk-error"), event.error.message);
      break;
    case "closed":
      if (conversation) stopTalking(event.reason ? `Disconnected: ${event.reason}` : "");
      break;
  }
}

async function startTalking() {
  show($("talk-error"), "");
  const handsFree = $("talk-hands-free").checked;
  document.body.dataset.talk = "connecting";
  $("talk-busy").hidden = false;
  try {
    conversation = new Conversation({ url: api.base() || window.location.origin, key: api.key(), voice: $("voice").value, handsFree, onEvent: onTalkEvent });
    await conversation.start();
    $("talk-start").textContent = "Stop talking";
    $("talk-hold").hidden = handsFree;
  } catch (error) {
    stopTalking();
    show($("talk-error"), `Could not start: ${error.message}`);
    document.body.dataset.talk = "error";
  } finally {
    $("talk-busy").hidden = true;
  }
}

function stopTalking(message = "") {
  conversation?.close();
  conversation = null;
  $("talk-start").textContent = "Start talking";
  $("talk-hold").hidden = true;
  $("talk-status").textContent = message;
  document.body.dataset.talk = "off";
}

function setUpTalking() {
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    $("talk-start").disabled = true;
    $("talk-status").textContent = "This browser cannot capture audio here (it needs https or localhost).";
    return;
  }
  $("talk-start").addEventListener("click", () => (conversation ? stopTalking() : startTalking()));
  const hold = $("talk-hold");
  const press = (pressed) => {
    hold.setAttribute("aria-pressed", String(pressed));
    conversation?.hold(pressed);
  };
  hold.addEventListener("pointerdown", () => press(true));
  hold.addEventListener("pointerup", () => press(false));
  hold.addEventListener("pointerleave", () => hold.getAttribute("aria-pressed") === "true" && press(false));
  hold.addEventListener("keydown", (e) => (e.key === " " || e.key === "Enter") && !e.repeat && press(true));
  hold.addEventListener("keyup", (e) => (e.key === " " || e.key === "Enter") && press(false));
}

// ---- start --------------------------------------------------------------------------------

function start() {
  const params = new URLSearchParams(window.location.search);
  if (params.get("api")) store.setItem("voxclone.api", params.get("api"));
  $("speed").addEventListener("input", () => ($("speed-value").textContent = `${Number($("speed").value).toFixed(2)}×`));
  $("speak-form").addEventListener("submit", speak);
  $("clone-form").addEventListener("submit", cloneVoice);
  $("record-button").addEventListener("click", toggleRecording);
  $("consent-record").addEventListener("click", toggleConsent);
  $("consent-new").addEventListener("click", newChallenge);
  $("key-button").addEventListener("click", askForKey);
  $("key-cancel").addEventListener("click", () => $("key-dialog").close(""));
  if (!window.MediaRecorder) $("record-button").hidden = $("consent-record").hidden = true;
  setUpTalking();
  loadVoices()
    .then(newChallenge)
    .catch((error) => show($("speak-error"), `Could not load voices: ${error.message}`));
}

start();

// The Talk panel: a realtime voice conversation over /v1/realtime (OpenAI Realtime events, pcm16 24 kHz).
// The microphone is captured by an AudioWorklet in 20 ms frames; replies are scheduled on the same
// AudioContext and stopped the moment the server hears the user speak again (barge-in).

const RATE = 24000;
const FRAME = RATE / 50;

const CAPTURE = `
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("capture", Capture);
`;

function base64Pcm(samples) {
  const pcm = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) pcm[i] = Math.max(-1, Math.min(1, samples[i])) * 32767;
  let text = "";
  const bytes = new Uint8Array(pcm.buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function pcmSamples(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const pcm = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  return Float32Array.from(pcm, (v) => v / 32768);
}

export class Conversation {
  constructor({ url, key, voice, handsFree, onEvent }) {
    Object.assign(this, { url, key, voice, handsFree, onEvent });
    this.sending = handsFree; // push-to-talk sends only while held
    this.playing = [];
    this.playhead = 0;
    this.pending = new Float32Array(0);
  }

  async start() {
    this.context = new AudioContext({ sampleRate: RATE });
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    const module = URL.createObjectURL(new Blob([CAPTURE], { type: "text/javascript" }));
    await this.context.audioWorklet.addModule(module);
    const source = this.context.createMediaStreamSource(this.stream);
    this.capture = new AudioWorkletNode(this.context, "capture");
    this.capture.port.onmessage = (e) => this.microphone(e.data);
    source.connect(this.capture);
    const protocols = ["realtime", ...(this.key ? [`openai-insecure-api-key.${this.key}`] : [])];
    const socketUrl = `${this.url.replace(/^http/, "ws")}/v1/realtime?voice=${encodeURIComponent(this.voice)}`;
    this.socket = new WebSocket(socketUrl, protocols);
    await new Promise((resolve, reject) => {
      this.socket.onopen = resolve;
      this.socket.onerror = () => reject(new Error("could not connect (check the API key)"));
    });
    this.socket.onmessage = (m) => this.receive(JSON.parse(m.data));
    this.socket.onclose = (e) => this.onEvent({ type: "closed", reason: e.reason });
    const turnDetection = this.handsFree ? { type: "server_vad", silence_duration_ms: 500 } : null;
    this.send({ type: "session.update", session: { turn_detection: turnDetection } });
  }

  send(event) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(event));
  }

  microphone(samples) {
    if (!this.sending) return;
    const joined = new Float32Array(this.pending.length + samples.length);
    joined.set(this.pending);
    joined.set(samples, this.pending.length);
    let offset = 0;
    for (; offset + FRAME <= joined.length; offset += FRAME) {
      this.send({ type: "input_audio_buffer.append", audio: base64Pcm(joined.subarray(offset, offset + FRAME)) });
    }
    this.pending = joined.slice(offset);
  }

  hold(pressed) {
    if (this.handsFree) return;
    this.sending = pressed;
    if (pressed) {
      this.stopPlayback();
      this.send({ type: "input_audio_buffer.clear" });
    } else {
      this.send({ type: "input_audio_buffer.commit" });
      this.send({ type: "response.create" });
    }
  }

  play(samples) {
    const buffer = this.context.createBuffer(1, samples.length, RATE);
    buffer.copyToChannel(samples, 0);
    const node = this.context.createBufferSource();
    node.buffer = buffer;
    node.connect(this.context.destination);
    this.playhead = Math.max(this.playhead, this.context.currentTime + 0.05);
    node.start(this.playhead);
    this.playhead += buffer.duration;
    this.playing.push(node);
    node.onended = () => (this.playing = this.playing.filter((n) => n !== node));
  }

  stopPlayback() {
    for (const node of this.playing) node.stop();
    this.playing = [];
    this.playhead = 0;
  }

  receive(event) {
    if (event.type === "response.audio.delta") this.play(pcmSamples(event.delta));
    if (event.type === "input_audio_buffer.speech_started") this.stopPlayback(); // barge-in: silence at once
    this.onEvent(event);
  }

  close() {
    this.stopPlayback();
    this.socket?.close();
    this.stream?.getTracks().forEach((t) => t.stop());
    this.context?.close();
  }
}

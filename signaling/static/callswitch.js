// callswitch browser SDK: a Device that registers with an access token and
// places or receives calls; a Call per conversation. No dependencies.
// The wire protocol is documented in docs/webrtc.md.
//
//   import { Device } from "/phone/callswitch.js";
//   const device = new Device(token);
//   device.addEventListener("incoming", (e) => e.detail.accept());
//   await device.register();
//   const call = await device.connect({ to: "+15551234567", params: { team: "blue" } });
//
// Device events: registered (again after updateToken), unregistered, incoming (detail: Call),
//                error (detail: {code, message}).
// Call events: ringing, accept, status (detail: status), cancel, reject, disconnect,
//              mute (detail: bool), volume (detail: {input, output} from 0 to 1), error.

const GATHER_MS = 2000; // longest wait for ICE candidates before the SDP goes anyway

function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/signaling`;
}

function emit(target, type, detail) {
  target.dispatchEvent(new CustomEvent(type, { detail }));
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_MS);
  });
}

export class Device extends EventTarget {
  constructor(token, options = {}) {
    super();
    this.token = token;
    this.url = options.url || defaultUrl();
    this.identity = null;
    this.iceServers = [];
    this.calls = new Map(); // CallSid -> Call
    this.state = "unregistered";
    this._pending = new Map(); // ref -> Call awaiting its answer
    this._refs = 0;
    this._ws = null;
  }

  register() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this._ws = ws;
      let settled = false;
      ws.onopen = () => this._send({ type: "register", token: this.token });
      ws.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (!settled && message.type === "registered") {
          settled = true;
          resolve(this);
        } else if (!settled && message.type === "error") {
          settled = true;
          reject(Object.assign(new Error(message.message), { code: message.code }));
        }
        this._receive(message);
      };
      ws.onclose = () => {
        this.state = "unregistered";
        for (const call of this.calls.values()) call._ended("disconnect", "connection lost");
        emit(this, "unregistered");
        if (!settled) {
          settled = true;
          reject(new Error("the signaling connection closed"));
        }
      };
    });
  }

  // A fresh token for the same identity, before the old one expires; calls go on.
  updateToken(token) {
    this.token = token;
    this._send({ type: "register", token });
  }

  async connect({ to = "", params = {} } = {}) {
    const ref = `r${++this._refs}`;
    const call = new Call(this, { direction: "outgoing", to, from: this.identity });
    this._pending.set(ref, call);
    try {
      await call._startOutgoing(ref, to, params);
    } catch (error) {
      this._pending.delete(ref);
      call._ended("error", error.message);
      throw error;
    }
    return call;
  }

  destroy() {
    for (const call of this.calls.values()) call.disconnect();
    if (this._ws) this._ws.close();
  }

  _send(message) {
    if (this._ws && this._ws.readyState === WebSocket.OPEN) {
      this._ws.send(JSON.stringify(message));
    }
  }

  _receive(message) {
    const call = message.call ? this.calls.get(message.call) : null;
    switch (message.type) {
      case "registered":
        this.state = "registered";
        this.identity = message.identity;
        this.iceServers = message.ice_servers || [];
        emit(this, "registered", message);
        break;
      case "incoming": {
        const incoming = new Call(this, {
          direction: "incoming",
          sid: message.call,
          from: message.from,
          to: message.to,
          offer: message.sdp,
        });
        this.calls.set(incoming.sid, incoming);
        emit(this, "incoming", incoming);
        break;
      }
      case "answer": {
        const pending = this._pending.get(message.ref);
        if (!pending) break;
        this._pending.delete(message.ref);
        pending.sid = message.call;
        this.calls.set(pending.sid, pending);
        pending._answered(message.sdp);
        break;
      }
      case "status":
        if (call) call._status(message.status);
        break;
      case "cancel":
        if (call) call._ended("cancel", message.reason);
        break;
      case "hangup":
        if (call) call._ended("disconnect", message.reason);
        break;
      case "error":
        if (call) emit(call, "error", message);
        else emit(this, "error", message);
        break;
    }
  }
}

export class Call extends EventTarget {
  constructor(device, { direction, sid = null, from = "", to = "", offer = null }) {
    super();
    this.device = device;
    this.direction = direction;
    this.sid = sid;
    this.from = from;
    this.to = to;
    this.status = direction === "incoming" ? "ringing" : "connecting";
    this.muted = false;
    this._offer = offer;
    this._pc = null;
    this._local = null;
    this._audio = null;
    this._meters = null;
    this._sdpSent = false;
  }

  async accept() {
    if (this.direction !== "incoming" || this.status !== "ringing") return;
    this.status = "connecting";
    const pc = await this._peer();
    await pc.setRemoteDescription({ type: "offer", sdp: this._offer });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    this.device._send({ type: "accept", call: this.sid, sdp: pc.localDescription.sdp });
    this._sdpSent = true;
    emit(this, "accept", this);
  }

  reject() {
    if (this.direction !== "incoming" || this.status !== "ringing") return;
    this.device._send({ type: "reject", call: this.sid });
    this._ended("reject", "rejected");
  }

  disconnect() {
    if (this.status === "closed") return;
    if (this.sid) this.device._send({ type: "hangup", call: this.sid });
    this._ended("disconnect", "local hangup");
  }

  mute(muted = true) {
    this.muted = muted;
    if (this._local) for (const track of this._local.getAudioTracks()) track.enabled = !muted;
    if (this.sid) this.device._send({ type: "mute", call: this.sid, muted });
    emit(this, "mute", muted);
  }

  isMuted() {
    return this.muted;
  }

  sendDigits(digits) {
    if (this.sid && /^[0-9*#A-Dw]+$/.test(digits)) {
      this.device._send({ type: "dtmf", call: this.sid, digits });
    }
  }

  // The loudest frequency (Hz) and level (dBFS) of what the far end sends now.
  analyse() {
    if (!this._meters) return { frequency: 0, level: -120 };
    const analyser = this._meters.output;
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    let best = 0;
    for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    const frequency = (best * this._meters.context.sampleRate) / analyser.fftSize;
    return { frequency, level: levelOf(analyser) };
  }

  async _peer() {
    const pc = new RTCPeerConnection({ iceServers: this.device.iceServers });
    this._pc = pc;
    this._local = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    for (const track of this._local.getAudioTracks()) pc.addTrack(track, this._local);
    pc.onicecandidate = (event) => {
      // Candidates found after the SDP went out are trickled.
      if (this._sdpSent && this.sid) {
        const c = event.candidate;
        this.device._send({
          type: "candidate",
          call: this.sid,
          candidate: c ? c.candidate : "",
          sdpMid: c ? c.sdpMid : null,
          sdpMLineIndex: c ? c.sdpMLineIndex : null,
        });
      }
    };
    pc.ontrack = (event) => this._remote(event.streams[0] || new MediaStream([event.track]));
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") this.disconnect();
    };
    return pc;
  }

  async _startOutgoing(ref, to, params) {
    const pc = await this._peer();
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    this.device._send({ type: "call", ref, to, params, sdp: pc.localDescription.sdp });
    this._sdpSent = true;
  }

  async _answered(sdp) {
    await this._pc.setRemoteDescription({ type: "answer", sdp });
    emit(this, "accept", this);
  }

  _status(status) {
    this.status = status === "in-progress" ? "open" : status;
    emit(this, "status", status);
    if (status === "ringing") emit(this, "ringing", this);
  }

  _remote(stream) {
    // Playing the stream is what makes Chrome decode it, for the ear and the analyser alike.
    this._audio = new Audio();
    this._audio.autoplay = true;
    this._audio.srcObject = stream;
    this._audio.play().catch(() => {});
    const context = new AudioContext();
    const output = context.createAnalyser();
    output.fftSize = 8192;
    context.createMediaStreamSource(stream).connect(output);
    const input = context.createAnalyser();
    input.fftSize = 2048;
    if (this._local) context.createMediaStreamSource(this._local).connect(input);
    this._meters = { context, output, input };
    context.resume().catch(() => {});
    const tick = () => {
      if (this.status === "closed") return;
      emit(this, "volume", { input: loudness(input), output: loudness(output) });
      setTimeout(tick, 100);
    };
    tick();
  }

  _ended(kind, reason) {
    if (this.status === "closed") return;
    this.status = "closed";
    if (this._pc) this._pc.close();
    if (this._local) for (const track of this._local.getTracks()) track.stop();
    if (this._audio) this._audio.srcObject = null;
    if (this._meters) this._meters.context.close().catch(() => {});
    if (this.sid) this.device.calls.delete(this.sid);
    emit(this, kind, reason);
    if (kind !== "disconnect") emit(this, "disconnect", reason);
  }
}

function levelOf(analyser) {
  const samples = new Float32Array(analyser.fftSize);
  analyser.getFloatTimeDomainData(samples);
  let sum = 0;
  for (const s of samples) sum += s * s;
  const rms = Math.sqrt(sum / samples.length);
  return rms > 0 ? 20 * Math.log10(rms) : -120;
}

// 0..1 for a meter: -60 dBFS and below is 0, 0 dBFS is 1.
function loudness(analyser) {
  return Math.max(0, Math.min(1, (levelOf(analyser) + 60) / 60));
}

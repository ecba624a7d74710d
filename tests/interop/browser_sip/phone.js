// A browser SIP phone for the interop tests, on JsSIP or SIP.js (?client=...).
// window.phone: start({url, user, password, domain}) registers; call(target) places
// a call; hold(true/false) puts it on hold and back (a re-INVITE); incoming calls are
// answered at once; analyse() gives the loudest frequency
// and the level of what the far end sends; status says where the phone is.
import {
  Web,
  Inviter,
  Registerer,
  RegistererState,
  SessionState,
  UserAgent,
} from "/sip.js/lib/index.js";

const NO_ICE_SERVERS = { iceServers: [] }; // host candidates only: loopback in the tests
const AUDIO_ONLY = { audio: true, video: false };

function setStatus(text) {
  phone.status = text;
  document.getElementById("status").textContent = text;
}

// Playing the stream makes Chrome decode it, for the analyser too.
function listen(stream) {
  const audio = new Audio();
  audio.autoplay = true;
  audio.srcObject = stream;
  audio.play().catch(() => {});
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  context.createMediaStreamSource(stream).connect(analyser);
  phone.meter = { audio, context, analyser };
}

function listenTo(pc) {
  const tracks = pc.getReceivers().map((r) => r.track).filter((t) => t && t.kind === "audio");
  if (tracks.length && !phone.meter) listen(new MediaStream(tracks));
  // A track comes (again) whenever the far end starts sending (again): after a hold,
  // the stream heard before lost it, so the page listens to the new one.
  pc.addEventListener("track", (event) => {
    if (phone.meter) phone.meter.context.close();
    listen(event.streams[0] || new MediaStream([event.track]));
  });
}

const jssip = {
  async start({ url, user, password, domain }) {
    const JsSIP = window.JsSIP;
    const ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(url)],
      uri: `sip:${user}@${domain}`,
      password,
      register: true,
      session_timers: false,
    });
    ua.on("newRTCSession", ({ session, originator }) => {
      phone.session = session;
      if (session.connection) listenTo(session.connection);
      session.on("peerconnection", (e) => listenTo(e.peerconnection));
      session.on("confirmed", () => setStatus("in-call"));
      session.on("ended", () => setStatus("ended"));
      session.on("failed", (e) => setStatus(`failed: ${e.cause}`));
      if (originator === "remote") {
        setStatus("ringing");
        session.answer({ mediaConstraints: AUDIO_ONLY, pcConfig: NO_ICE_SERVERS });
      }
    });
    await new Promise((resolve, reject) => {
      ua.on("registered", resolve);
      ua.on("registrationFailed", (e) => reject(new Error(`registration failed: ${e.cause}`)));
      ua.start();
    });
    this.ua = ua;
  },
  call(target) {
    this.ua.call(target, { mediaConstraints: AUDIO_ONLY, pcConfig: NO_ICE_SERVERS });
  },
  hangup() {
    if (phone.session) phone.session.terminate();
  },
  hold(held) {
    // A re-INVITE (sendonly, then sendrecv); JsSIP ends the call if it fails.
    const done = () => setStatus(held ? "held" : "resumed");
    if (held) phone.session.hold({}, done);
    else phone.session.unhold({}, done);
  },
};

const sipjs = {
  async start({ url, user, password, domain }) {
    const ua = new UserAgent({
      uri: UserAgent.makeURI(`sip:${user}@${domain}`),
      transportOptions: { server: url },
      authorizationUsername: user,
      authorizationPassword: password,
      sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: NO_ICE_SERVERS },
      delegate: {
        onInvite: (invitation) => {
          this.follow(invitation);
          setStatus("ringing");
          invitation.accept({ sessionDescriptionHandlerOptions: { constraints: AUDIO_ONLY } });
        },
      },
    });
    await ua.start();
    const registerer = new Registerer(ua);
    const registered = new Promise((resolve, reject) => {
      registerer.stateChange.addListener((state) => {
        if (state === RegistererState.Registered) resolve();
      });
      setTimeout(() => reject(new Error("not registered within 15 s")), 15000);
    });
    await registerer.register({
      requestDelegate: {
        onReject: (response) => setStatus(`register rejected: ${response.message.statusCode}`),
      },
    });
    await registered;
    this.ua = ua;
  },
  follow(session) {
    phone.session = session;
    let established = false;
    session.stateChange.addListener((state) => {
      if (state === SessionState.Established) {
        established = true;
        listenTo(session.sessionDescriptionHandler.peerConnection);
        setStatus("in-call");
      } else if (state === SessionState.Terminated) {
        setStatus(established ? "ended" : "failed");
      }
    });
  },
  call(target) {
    const inviter = new Inviter(this.ua, UserAgent.makeURI(target), {
      sessionDescriptionHandlerOptions: { constraints: AUDIO_ONLY },
    });
    this.follow(inviter);
    inviter.invite().catch((e) => setStatus(`failed: ${e}`));
  },
  hangup() {
    const session = phone.session;
    if (!session) return;
    if (session.state === SessionState.Established) session.bye();
  },
  hold(held) {
    phone.session.invite({
      sessionDescriptionHandlerModifiers: held ? [Web.holdModifier] : [],
      requestDelegate: {
        onAccept: () => setStatus(held ? "held" : "resumed"),
        onReject: (response) => setStatus(`hold refused: ${response.message.statusCode}`),
      },
    });
  },
};

const phone = {
  status: "loading",
  session: null,
  meter: null,
  client: null,
  async start(options) {
    const name = new URLSearchParams(location.search).get("client");
    this.client = { jssip, sipjs }[name];
    setStatus("registering");
    try {
      await this.client.start(options);
      setStatus("registered");
    } catch (e) {
      setStatus(`error: ${e.message || e}`);
    }
  },
  call(target) {
    setStatus("calling");
    this.client.call(target);
  },
  hangup() {
    this.client.hangup();
  },
  hold(held) {
    this.client.hold(held);
  },
  analyse() {
    if (!this.meter) return null;
    const { analyser, context } = this.meter;
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    let best = 1;
    for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    const samples = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    const rms = Math.sqrt(sum / samples.length);
    return {
      frequency: (best * context.sampleRate) / analyser.fftSize,
      level: rms > 0 ? 20 * Math.log10(rms) : -120,
    };
  },
};

window.phone = phone;
setStatus("loaded");

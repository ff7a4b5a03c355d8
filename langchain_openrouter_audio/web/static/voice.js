// The voice page: microphone -> PCM16 over the WebSocket, streamed reply speech -> gapless
// Web Audio playback, transcript and tool calls as they arrive, barge-in on "stop".
// Test hooks: button #talk, and window.voiceStats (see the package docs).
(() => {
  "use strict";
  const meta = document.querySelector('meta[name="voice-sample-rate"]');
  const MIC_RATE = parseInt(meta && meta.content, 10) || 16000;
  const params = new URLSearchParams(location.search);
  const PROCESSING = params.get("processing") !== "0"; // echo cancellation etc.
  const FIRST_LEAD_S = 0.08; // buffer ahead of the first chunk so jitter does not cut it
  const CONVERSATION_KEY = "voice-conversation"; // sessionStorage: per tab, gone when it closes
  const TAKEN_OVER = 4409; // close code: the conversation continued on a newer connection
  const stats = (window.voiceStats = {
    state: "idle",
    transcript: "",
    receivedAudioBytes: 0,
    playedSeconds: 0,
    turns: 0,
    connected: false,
    toolCalls: [],
    userTexts: [], // {turn, text}: the user's words, as transcribed
    error: null,
    closed: null, // {code, reason} of the last connection, once it closed
  });
  const $ = (id) => document.getElementById(id);
  let ws = null;
  let ctx = null;
  let micStream = null;
  let capture = null;
  let ticker = null;
  let lastReport = 0;
  let reply = null; // the reply of the current turn
  let audioTurn = null; // turn of the binary frames that follow an audio_start
  let audioRate = 24000;
  let playedBefore = 0; // seconds played in finished turns
  const finishedTurns = new Map(); // turn -> seconds played
  const userLines = new Map(); // turn -> the user's line in the log

  function setState(state) {
    stats.state = state;
    const el = $("state");
    el.textContent = state;
    el.className = "state " + state;
  }

  const LABELS = { user: "You", agent: "Agent", tool: "Tool", error: "Error" };

  function log(cls, text) {
    const li = document.createElement("li");
    li.className = cls;
    const label = document.createElement("small");
    label.textContent = LABELS[cls] || cls;
    const body = document.createElement("span");
    body.textContent = text;
    li.append(label, body);
    $("log").appendChild(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  function send(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  function newReply(turn) {
    return { turn, rate: audioRate, next: 0, segments: [], sources: [], transcript: "",
      el: null, ended: false, stopped: false, done: false, heard: 0, startReported: false };
  }

  function playedOf(r) {
    if (!r || !ctx) return 0;
    if (r.stopped || r.done) return r.heard;
    const now = ctx.currentTime;
    let s = 0;
    for (const [a, b] of r.segments) if (now > a) s += Math.min(now, b) - a;
    return s;
  }

  function finish(r, stopped) {
    if (r.done) return;
    r.heard = playedOf(r);
    r.done = true;
    r.stopped = stopped;
    for (const src of r.sources) {
      try { src.stop(); } catch (e) { /* already ended */ }
    }
    r.sources = [];
    playedBefore += r.heard;
    stats.playedSeconds = playedBefore;
    finishedTurns.set(r.turn, r.heard);
    send({ type: stopped ? "stopped" : "played", turn: r.turn, seconds: r.heard, done: true });
    if (stopped && r.el) r.el.classList.add("cut");
    stats.turns += 1;
    setState(stopped ? "listening" : "idle");
  }

  function playChunk(buf) {
    const r = reply;
    if (!r || audioTurn !== r.turn || r.done || !ctx) return;
    const pcm = new Int16Array(buf, 0, buf.byteLength >> 1);
    if (!pcm.length) return;
    const f32 = new Float32Array(pcm.length);
    for (let i = 0; i < pcm.length; i++) f32[i] = pcm[i] / 32768;
    const buffer = ctx.createBuffer(1, f32.length, r.rate);
    buffer.copyToChannel(f32, 0);
    const src = ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(ctx.destination);
    const now = ctx.currentTime;
    let at = r.next; // back to back with the previous chunk: gapless
    if (at < now + 0.01) at = now + (r.segments.length ? 0.02 : FIRST_LEAD_S); // underrun
    src.start(at);
    r.next = at + buffer.duration;
    r.segments.push([at, r.next]);
    r.sources.push(src);
    src.onended = () => {
      const i = r.sources.indexOf(src);
      if (i >= 0) r.sources.splice(i, 1);
    };
    setState("speaking");
  }

  function tick() {
    const r = reply;
    if (!r || r.done || !ctx) return;
    const played = playedOf(r);
    stats.playedSeconds = playedBefore + played;
    if (r.ended && ctx.currentTime >= r.next && (r.segments.length || !r.resumed)) {
      finish(r, false);
    } else if (
      (played > 0 && !r.startReported) || // the agent learns at once that the user hears it
      (r.segments.length && performance.now() - lastReport > 250)
    ) {
      r.startReported = r.startReported || played > 0;
      lastReport = performance.now();
      send({ type: "played", turn: r.turn, seconds: played, done: false });
    }
    $("stats").textContent =
      `turns ${stats.turns} · received ${(stats.receivedAudioBytes / 1024).toFixed(0)} KiB` +
      ` · played ${stats.playedSeconds.toFixed(1)} s`;
  }

  function onMessage(event) {
    if (typeof event.data !== "string") {
      stats.receivedAudioBytes += event.data.byteLength;
      playChunk(event.data);
      return;
    }
    const m = JSON.parse(event.data);
    switch (m.type) {
      case "ready":
        stats.connected = true;
        // A remote agent's conversation: a reconnect (this tab, any worker) continues it.
        if (typeof m.conversation === "string") sessionStorage.setItem(CONVERSATION_KEY, m.conversation);
        stats.resumed = m.resumed === true; // earlier turns of this conversation were found
        setState("idle");
        break;
      case "speech_start":
        if (stats.state === "idle") setState("listening");
        break;
      case "utterance":
        userLines.set(m.turn, log("user", `(spoke for ${m.seconds.toFixed(1)} s)`));
        if (reply && !reply.done) finish(reply, true);
        reply = newReply(m.turn);
        stats.transcript = "";
        setState("thinking");
        break;
      case "user_text": {
        // The user's words, once transcribed (before or after the reply starts).
        stats.userTexts.push({ turn: m.turn, text: m.text });
        const line = userLines.get(m.turn);
        if (line) line.lastChild.textContent = m.text;
        else log("user", m.text);
        break;
      }
      case "transcript":
        // A stopped reply may be paused (a short sound): its text goes on arriving.
        if (!reply || m.turn !== reply.turn) break;
        reply.transcript += m.text;
        stats.transcript = reply.transcript;
        if (!reply.el) reply.el = log("agent", "");
        reply.el.lastChild.textContent = reply.transcript;
        break;
      case "tool_call": {
        // The app sends args only with voice_app(tool_details=True); otherwise just the name.
        const call = { name: String(m.name) };
        if ("args" in m) call.args = m.args;
        stats.toolCalls.push(call);
        log("tool", "args" in m ? `${call.name}(${JSON.stringify(m.args)})` : `${call.name}…`);
        break;
      }
      case "tool_result":
        log("tool", "output" in m ? `returned: ${m.output}` : `${m.name || "tool"} done`);
        break;
      case "audio_start":
        audioTurn = m.turn;
        audioRate = m.sample_rate;
        if (reply && reply.turn === m.turn && reply.stopped) {
          // The rest of a reply paused for a short sound: play it as a fresh start.
          const paused = reply;
          reply = newReply(m.turn);
          reply.el = paused.el;
          reply.transcript = paused.transcript;
          reply.ended = paused.ended;
          reply.resumed = true; // its audio follows: not over before that has played
          if (reply.el) reply.el.classList.remove("cut");
          stats.turns -= 1; // counted again when it finishes
        }
        if (reply && reply.turn === m.turn) reply.rate = m.sample_rate;
        break;
      case "reply_end":
        if (reply && reply.turn === m.turn) reply.ended = true;
        tick();
        break;
      case "stop":
        if (reply && reply.turn === m.turn && !reply.done) finish(reply, true);
        else send({ type: "stopped", turn: m.turn, seconds: finishedTurns.get(m.turn) || 0 });
        break;
      case "error":
        stats.error = m.message;
        log("error", m.message);
        break;
    }
  }

  async function start() {
    ctx = new AudioContext({ latencyHint: "interactive" });
    await ctx.resume();
    micStream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: PROCESSING, noiseSuppression: PROCESSING,
        autoGainControl: PROCESSING },
    });
    await ctx.audioWorklet.addModule("static/capture-worklet.js");
    const mic = ctx.createMediaStreamSource(micStream);
    capture = new AudioWorkletNode(ctx, "pcm-capture", {
      processorOptions: { targetRate: MIC_RATE, frameMs: 20 },
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
    });
    const mute = ctx.createGain(); // keeps the worklet pulled without echoing the mic
    mute.gain.value = 0;
    mic.connect(capture).connect(mute).connect(ctx.destination);

    const base = location.pathname.replace(/[^/]*$/, "");
    ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${base}ws`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      const hello = { type: "hello", sample_rate: MIC_RATE };
      const conversation = sessionStorage.getItem(CONVERSATION_KEY);
      if (conversation) hello.conversation = conversation;
      send(hello);
    };
    ws.onmessage = onMessage;
    ws.onclose = (e) => {
      stats.connected = false;
      stats.closed = { code: e.code, reason: e.reason };
      // 4409: a newer connection (another tab) took this conversation over; its reason says so.
      if (e.code === TAKEN_OVER) log("error", e.reason || "This conversation continued in another tab.");
      else if (e.code !== 1000) log("error", `disconnected (${e.code}${e.reason ? ": " + e.reason : ""})`);
      stop();
    };
    capture.port.onmessage = (e) => {
      $("level").style.width = Math.min(100, e.data.peak * 140).toFixed(0) + "%";
      if (ws && ws.readyState === WebSocket.OPEN && stats.connected) ws.send(e.data.pcm);
    };
    ticker = setInterval(tick, 40);
    $("talk").textContent = "Hang up";
    $("talk").classList.add("on");
    $("hint").textContent = TALKING_HINT;
    $("ptt").disabled = false;
  }

  function stop() {
    if (ticker) clearInterval(ticker);
    ticker = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
    ws = null;
    if (micStream) micStream.getTracks().forEach((t) => t.stop());
    micStream = null;
    if (ctx) ctx.close();
    ctx = null;
    reply = null;
    stats.connected = false;
    setState("idle");
    $("talk").textContent = "Start talking";
    $("talk").classList.remove("on");
    $("hint").innerHTML = IDLE_HINT;
    $("ptt").disabled = true;
  }

  // The idle hint says to press "Start talking"; once the button reads "Hang up" it must not.
  const IDLE_HINT = $("hint").innerHTML;
  const TALKING_HINT =
    "Listening: ask a question and pause, and the agent answers. " +
    "Speak over the answer to interrupt it; press Hang up to end.";

  $("talk").addEventListener("click", () => {
    if (ws) return stop();
    start().catch((err) => {
      stats.error = String(err);
      log("error", `Could not start: ${err}`);
      stop();
    });
  });

  // Push-to-talk: what is said while the button (or the space bar) is held is one utterance.
  let holding = false;
  function pttDown() {
    if (holding || !ws) return;
    holding = true;
    send({ type: "ptt_start" });
    if (reply && !reply.done) finish(reply, true);
    setState("listening");
  }
  function pttUp() {
    if (!holding) return;
    holding = false;
    send({ type: "ptt_end" });
  }
  const ptt = $("ptt");
  ptt.addEventListener("pointerdown", pttDown);
  ptt.addEventListener("pointerup", pttUp);
  ptt.addEventListener("pointerleave", pttUp);
  document.addEventListener("keydown", (e) => {
    if (e.code === "Space" && !e.repeat && e.target === document.body) { e.preventDefault(); pttDown(); }
  });
  document.addEventListener("keyup", (e) => { if (e.code === "Space") pttUp(); });
})();

// Microphone capture: Float32 at the context rate -> PCM16 mono at the target rate, posted
// to the page in fixed frames. Downsampling averages the input samples that fall in each
// output sample's interval (a box low-pass, enough for speech at 16/24 kHz).
class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.ratio = sampleRate / (opts.targetRate || 16000);
    this.frame = Math.round((opts.targetRate || 16000) * (opts.frameMs || 20) / 1000);
    this.out = new Int16Array(this.frame);
    this.n = 0;
    this.sum = 0;
    this.count = 0;
    this.pos = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const ch = input[0];
    for (let i = 0; i < ch.length; i++) {
      this.sum += ch[i];
      this.count++;
      this.pos += 1;
      if (this.pos < this.ratio) continue;
      this.pos -= this.ratio;
      let v = this.sum / this.count;
      this.sum = 0;
      this.count = 0;
      v = v > 1 ? 1 : v < -1 ? -1 : v;
      const a = v < 0 ? -v : v;
      if (a > this.peak) this.peak = a;
      this.out[this.n++] = v < 0 ? v * 0x8000 : v * 0x7fff;
      if (this.n === this.frame) {
        this.port.postMessage({ pcm: this.out.buffer, peak: this.peak }, [this.out.buffer]);
        this.out = new Int16Array(this.frame);
        this.n = 0;
        this.peak = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);

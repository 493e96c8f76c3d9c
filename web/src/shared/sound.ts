// A short two-tone "ding" made with WebAudio, so no audio file is shipped.
// Browsers refuse audio before the user has interacted with the page; that
// failure is expected and ignored.

let ctx: AudioContext | null = null;

export function ding(): void {
  try {
    const AC: typeof AudioContext | undefined =
      window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
    if (!AC) return;
    ctx ??= new AC();
    if (ctx.state === 'suspended') void ctx.resume().catch(() => {});
    const t = ctx.currentTime;
    const gain = ctx.createGain();
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.15, t + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.15);
    gain.connect(ctx.destination);
    const osc = ctx.createOscillator();
    osc.type = 'sine';
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.setValueAtTime(1320, t + 0.06);
    osc.connect(gain);
    osc.start(t);
    osc.stop(t + 0.16);
  } catch {
    // Autoplay policy or no audio device: stay silent.
  }
}

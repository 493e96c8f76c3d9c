// Exponential back-off with "full jitter": each delay is uniform in
// [0, min(cap, base * 2^n)). Clients dropped together (a gateway restart)
// then come back spread out instead of in one thundering herd.

export class Backoff {
  private n = 0;
  private readonly random: () => number;
  private readonly base: number;
  private readonly cap: number;

  constructor(random: () => number = Math.random, base = 500, cap = 30_000) {
    this.random = random;
    this.base = base;
    this.cap = cap;
  }

  /** The next delay in ms; each call doubles the ceiling, up to the cap. */
  next(): number {
    const ceiling = Math.min(this.cap, this.base * 2 ** this.n);
    if (ceiling < this.cap) this.n++;
    return Math.floor(this.random() * ceiling);
  }

  reset(): void {
    this.n = 0;
  }
}

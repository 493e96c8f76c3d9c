// A minimal typed event emitter, so the library needs no dependency.

type Listener<T> = (e: T) => void;

export class Emitter<E> {
  private fns = new Map<keyof E, Set<Listener<never>>>();

  /** Subscribes; the returned function unsubscribes. */
  on<K extends keyof E>(type: K, fn: Listener<E[K]>): () => void {
    let set = this.fns.get(type);
    if (!set) this.fns.set(type, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => {
      set.delete(fn as Listener<never>);
    };
  }

  emit<K extends keyof E>(type: K, e: E[K]): void {
    const set = this.fns.get(type);
    if (!set) return;
    // Copy, so a listener may unsubscribe while we iterate. A throwing
    // listener must not break the client's state machine or starve the others.
    for (const fn of [...set]) {
      try {
        (fn as Listener<E[K]>)(e);
      } catch (err) {
        console.error(err);
      }
    }
  }
}

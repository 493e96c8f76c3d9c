import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff';
import { Emitter } from './emitter';

describe('Backoff', () => {
  it('doubles its ceiling up to the cap, draws uniformly below it, and resets', () => {
    const top = new Backoff(() => 0.999999, 500, 30_000);
    expect(Array.from({ length: 9 }, () => top.next())).toEqual([499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
    top.reset();
    expect(top.next()).toBe(499);
    expect(new Backoff(() => 0, 500).next()).toBe(0);
  });
});

describe('Emitter', () => {
  it('unsubscribes, and a throwing listener does not stop the others', () => {
    const e = new Emitter<{ x: number }>();
    const got: number[] = [];
    const off = e.on('x', (n) => got.push(n));
    const spy = console.error;
    console.error = () => {};
    e.on('x', () => {
      throw new Error('boom');
    });
    e.on('x', (n) => got.push(n * 10));
    e.emit('x', 1);
    off();
    e.emit('x', 2);
    console.error = spy;
    expect(got).toEqual([1, 10, 20]);
  });
});

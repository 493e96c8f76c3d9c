import { describe, expect, test } from 'vitest';
import { UnreadCounter } from './unread';

describe('UnreadCounter', () => {
  test('a message in both the server count and an offline pull counts once', () => {
    const u = new UnreadCounter();
    u.add(7, 101); // pushed before the contact list arrived
    u.setBase(7, 2, 101); // the server counted 100 and 101
    expect(u.count(7)).toBe(2);
    expect(u.add(7, 101)).toBe(false);
    expect(u.add(7, 102)).toBe(true);
    expect(u.add(7, 102)).toBe(false);
    expect(u.count(7)).toBe(3);
  });

  test('reading up to an id clears what is at or below it', () => {
    const u = new UnreadCounter();
    u.setBase(7, 2, 101);
    u.add(7, 102);
    u.add(7, 103);
    expect(u.read(7, 102)).toBe(true);
    expect(u.count(7)).toBe(1);
    expect(u.read(7, 103)).toBe(true);
    expect(u.count(7)).toBe(0);
  });

  test('a read below the server count is partial and asks for a recount', () => {
    const u = new UnreadCounter();
    u.setBase(7, 3, 110);
    expect(u.read(7, 105)).toBe(false);
    expect(u.count(7)).toBe(3);
    u.setBase(7, 1, 110);
    expect(u.count(7)).toBe(1);
  });

  test('tasks are separate, and a forgotten task counts nothing', () => {
    const u = new UnreadCounter();
    u.add(1, 5);
    u.add(2, 6);
    u.forget(1);
    expect([u.count(1), u.count(2)]).toEqual([0, 1]);
  });
});

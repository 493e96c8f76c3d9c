// The customer's side, as a person uses it: a shop's page with the widget
// embedded under a strict CSP, a real `kefu serve`, and an agent played by a
// script over the WebSocket contract.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import type { Browser, BrowserContextOptions, FrameLocator, Page } from 'playwright-core';
import { DESKTOP, HostSite, Kefu, PHONE, ScriptedAgent, eventually, gradientPng, launchBrowser, person, shot } from './harness';

let browser: Browser;
let kefu: Kefu;
let agents: ScriptedAgent[] = [];

beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});
beforeEach(async () => {
  kefu = await Kefu.start();
});
afterEach(async () => {
  agents.forEach((a) => a.close());
  agents = [];
  await kefu.stop();
});

async function agent(id = 'alice', name = 'Alice'): Promise<ScriptedAgent> {
  const a = await ScriptedAgent.connect(kefu, id, name);
  agents.push(a);
  return a;
}

/** The host page with the widget loaded; `chat` is the widget's iframe. */
async function shop(options: BrowserContextOptions = DESKTOP, settings: Record<string, unknown> = {}) {
  const site = await HostSite.start(kefu, settings);
  const who = await person(browser, options);
  const page = await who.context.newPage();
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('websocket', (ws) => requests.push(ws.url()));
  await page.goto(site.url);
  const chat = page.frameLocator('iframe[title]');
  return { site, page, chat, requests, ...who };
}

async function openWidget(page: Page, chat: FrameLocator) {
  await page.getByRole('button', { name: 'Open chat' }).click();
  await chat.getByRole('textbox', { name: 'Message' }).waitFor();
}

async function say(chat: FrameLocator | Page, text: string) {
  const box = chat.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
}

/** The customer's own message bubbles holding `text`. */
function own(chat: FrameLocator, text: string) {
  return chat.locator('[data-state]', { hasText: text });
}

describe('the customer widget', () => {
  test('a customer says 你好, the agent answers, and a reply while closed shows a badge', async () => {
    const alice = await agent();
    const { page, chat, context, site, errors, requests } = await shop();
    await shot(page, 'widget-closed');
    await openWidget(page, chat);
    await say(chat, '你好');
    const hello = await alice.waitFor((f) => f.category === 'customer' && f.content === '你好', 'the customer message');
    await expect.poll(() => own(chat, '你好').getAttribute('data-state')).toMatch(/sent|read/);

    await alice.reply(hello.from, 'Hello! How can I help you today?');
    await chat.getByText('Hello! How can I help you today?').waitFor();
    await shot(page, 'widget-open');

    await chat.getByRole('button', { name: 'Close chat' }).click();
    await alice.reply(hello.from, 'Are you still there?');
    const launcher = page.getByRole('button', { name: /Open chat/ });
    await expect.poll(() => launcher.textContent()).toContain('1');
    await expect.poll(() => page.title()).toMatch(/^\(1\)/);
    await shot(page, 'widget-closed-unread');

    // No token in any URL the pages loaded, and the strict CSPs held.
    expect(requests.filter((u) => /eyJ[\w-]+\.[\w-]+/.test(u))).toEqual([]);
    expect(errors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
    await context.close();
    await site.stop();
  });

  test('an uploaded image shows as a picture and Kefu.sendCard arrives as a card', async () => {
    const alice = await agent();
    const { page, chat, context, site } = await shop();
    await openWidget(page, chat);
    await say(chat, 'I have a question about this');
    await alice.waitFor((f) => f.category === 'customer', 'first message');

    const chooser = page.waitForEvent('filechooser');
    await chat.getByRole('button', { name: 'Attach file' }).click();
    await (await chooser).setFiles({ name: 'photo.png', mimeType: 'image/png', buffer: PNG });
    const picture = await alice.waitFor((f) => f.kind === 'picture', 'the picture message');
    expect(picture.content).toMatch(/\/files\/[0-9a-f]{32}$/);
    await expect.poll(() => chat.locator(`img[src="${picture.content}"]`).count()).toBe(1);

    await page.evaluate(() =>
      (window as any).Kefu.sendCard({ title: 'Trail Runner 2', url: 'https://shop.example.com/p/42', price: '¥599', image: '' }),
    );
    const card = await alice.waitFor((f) => f.style === 'card', 'the card message');
    expect(card.ext).toMatchObject({ title: 'Trail Runner 2', url: 'https://shop.example.com/p/42', price: '¥599' });
    await chat.getByRole('link', { name: /Trail Runner 2/ }).waitFor();
    await shot(page, 'widget-picture-and-card');
    await context.close();
    await site.stop();
  });

  test('a customer signed in by the site chats as themselves, sends an order, and switches with Kefu.setUser', async () => {
    const alice = await agent();
    const token = kefu.token('shop-42', 'customer', 'Dana');
    const { page, chat, context, site } = await shop(DESKTOP, { token });
    await openWidget(page, chat);
    await say(chat, 'hello from a member');
    const first = await alice.waitFor((f) => f.content === 'hello from a member', 'the member message');
    expect(first.from).toBe('shop-42');

    await page.evaluate(() =>
      (window as any).Kefu.sendOrder({ order_no: 'A-10293', title: 'Blue kettle', url: 'https://shop.example.com/o/1', price: '¥199', status: 'Shipped' }),
    );
    const order = await alice.waitFor((f) => f.style === 'order', 'the order message');
    expect(order.ext).toMatchObject({ order_no: 'A-10293', title: 'Blue kettle' });
    // The site gave a token: nothing of a visitor's is kept on its page.
    expect(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('kefu.visitor')))).toEqual([]);

    const other = kefu.token('shop-43', 'customer', 'Eve');
    await page.evaluate((t) => (window as any).Kefu.setUser({ token: t, name: 'Eve' }), other);
    await expect
      .poll(async () => {
        await say(chat, 'now as Eve');
        return alice.frames.some((f) => f.content === 'now as Eve' && f.from === 'shop-43');
      })
      .toBe(true);
    await context.close();
    await site.stop();
  });

  test('the agent reading shows ✓✓ and the agent typing shows until their message', async () => {
    const alice = await agent();
    const { page, chat, context, site } = await shop();
    await openWidget(page, chat);
    await say(chat, 'Is the red one in stock?');
    const msg = await alice.waitFor((f) => f.category === 'customer', 'the message');
    await expect.poll(() => own(chat, 'Is the red one in stock?').getAttribute('data-state')).toBe('sent');

    alice.read(msg.task_id, msg.id);
    await expect.poll(() => own(chat, 'Is the red one in stock?').getAttribute('data-state')).toBe('read');

    alice.typing(msg.task_id);
    const typing = chat.getByRole('status').filter({ hasText: /typing/i });
    await typing.waitFor();
    await alice.reply(msg.from, 'Yes, all sizes.');
    await chat.getByText('Yes, all sizes.').waitFor();
    await expect.poll(() => typing.count()).toBe(0);
    await context.close();
    await site.stop();
  });

  test('a reply sent while the page was closed shows once when the customer comes back', async () => {
    const alice = await agent();
    const { page, chat, context, site } = await shop();
    await openWidget(page, chat);
    await say(chat, 'I will come back later');
    const msg = await alice.waitFor((f) => f.category === 'customer', 'the message');
    await page.close();

    await alice.reply(msg.from, 'Your refund was approved.');
    const again = await context.newPage();
    await again.goto(site.url);
    const chat2 = again.frameLocator('iframe[title]');
    await openWidget(again, chat2);
    await chat2.getByText('Your refund was approved.').waitFor();
    await chat2.getByText('I will come back later').waitFor();
    await expect.poll(() => chat2.getByText('Your refund was approved.').count()).toBe(1);
    await context.close();
    await site.stop();
  });

  test('a visitor back after their hour-long token expired is still the same customer', async () => {
    const alice = await agent();
    const { page, chat, context, site } = await shop();
    await openWidget(page, chat);
    await say(chat, 'my order is late');
    const msg = await alice.waitFor((f) => f.category === 'customer', 'the message');
    // The widget's own storage is blocked in the shop's iframe: the shop's
    // page keeps the visitor's refresh token (30 days), not the access
    // token (an hour), so the visitor outlives it.
    const kept = await page.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.startsWith('kefu.visitor'))!;
      const token = localStorage.getItem(key)!;
      return JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))) as { typ?: string; sub: string };
    });
    expect(kept).toMatchObject({ typ: 'refresh', sub: msg.from });
    await page.close();

    await alice.reply(msg.from, 'It ships today.');
    const again = await context.newPage();
    const requests: string[] = [];
    again.on('request', (r) => requests.push(r.url()));
    await again.goto(site.url);
    const chat2 = again.frameLocator('iframe[title]');
    await openWidget(again, chat2);
    await chat2.getByText('It ships today.').waitFor();
    await chat2.getByText('my order is late').waitFor();
    expect(requests.filter((u) => u.endsWith('/api/refresh'))).toHaveLength(1);
    expect(requests.filter((u) => u.endsWith('/api/visitor'))).toHaveLength(0);
    await say(chat2, 'thanks!');
    const thanks = await alice.waitFor((f) => f.content === 'thanks!', 'the thanks');
    expect(thanks.from).toBe(msg.from);
    await context.close();
    await site.stop();
  });

  test('older history loads by scrolling up, each message once', async () => {
    const alice = await agent();
    const { page, chat, context, site } = await shop();
    await openWidget(page, chat);
    await say(chat, 'tell me everything');
    const msg = await alice.waitFor((f) => f.category === 'customer', 'the message');
    for (let i = 0; i < 60; i++) await alice.reply(msg.from, `line ${i}`);

    // A fresh page loads the newest page of history (50) first.
    const again = await context.newPage();
    await again.goto(site.url);
    const chat2 = again.frameLocator('iframe[title]');
    await openWidget(again, chat2);
    await chat2.getByText('line 59', { exact: true }).waitFor();
    const log = chat2.getByRole('log');
    await expect
      .poll(async () => {
        await log.evaluate((el) => (el.scrollTop = 0));
        return chat2.getByText('tell me everything').count();
      }, { timeout: 15_000 })
      .toBe(1);
    for (const i of [0, 9, 10, 59]) {
      expect(await chat2.getByText(`line ${i}`, { exact: true }).count()).toBe(1);
    }
    await context.close();
    await site.stop();
  });

  test('three messages written during a network drop reach the agent once each, in order', async () => {
    const alice = await agent();
    const { page, chat, context, site } = await shop();
    await openWidget(page, chat);
    await say(chat, 'before the tunnel');
    await alice.waitFor((f) => f.content === 'before the tunnel', 'first message');

    await context.setOffline(true);
    await chat.getByText(/offline|reconnecting/i).first().waitFor();
    for (const text of ['one', 'two', 'three']) await say(chat, text);
    await expect.poll(() => own(chat, 'three').getAttribute('data-state')).toBe('sending');
    expect(alice.fromCustomers()).toHaveLength(1); // nothing got through the drop
    await context.setOffline(false);

    await eventually(() => alice.fromCustomers().length >= 4 || undefined, 'all three messages', 20_000);
    await expect.poll(() => chat.locator('[data-state="sent"], [data-state="read"]').count(), { timeout: 20_000 }).toBe(4);
    const texts = alice.fromCustomers().map((f) => f.content);
    expect(texts).toEqual(['before the tunnel', 'one', 'two', 'three']);
    await context.close();
    await site.stop();
  });

  test('a customer withdraws their own message and both sides see it go', async () => {
    const alice = await agent();
    const { page, chat, context, site } = await shop();
    await openWidget(page, chat);
    await say(chat, 'my card number is 4111');
    const msg = await alice.waitFor((f) => f.content === 'my card number is 4111', 'the message');
    await expect.poll(() => own(chat, 'my card number is 4111').getAttribute('data-state')).toMatch(/sent|read/);

    await own(chat, 'my card number is 4111').hover();
    await chat.getByRole('button', { name: 'Withdraw' }).click();

    await alice.waitFor((f) => f.action === 'revoke' && f.quote === msg.id, 'the revoke notice');
    await expect.poll(() => chat.getByText('my card number is 4111').count()).toBe(0);
    await chat.getByText(/withdrew a message|Message withdrawn/).first().waitFor();
    const history = await kefu.api(alice.token, 'GET', `/api/tasks/${msg.task_id}/messages`);
    const stored = history.body.messages.find((m: any) => m.id === msg.id);
    expect(stored).toMatchObject({ is_revoke: true, content: '' });
    await context.close();
    await site.stop();
  });

  test('with no agent online the customer waits in line and is told who serves them', async () => {
    const { page, chat, context, site } = await shop();
    await openWidget(page, chat);
    await say(chat, 'anyone there?');
    await chat.getByText(/number 1 in line/).waitFor();
    await shot(page, 'widget-queued');

    await agent('bob', 'Bob');
    await chat.getByText('Bob is now serving you.').waitFor();
    await context.close();
    await site.stop();
  });

  test('when the agent ends the service the customer rates it and the rating is stored', async () => {
    const alice = await agent();
    const { page, chat, context, site } = await shop();
    await openWidget(page, chat);
    await say(chat, 'thanks, that is all');
    const msg = await alice.waitFor((f) => f.category === 'customer', 'the message');
    const ended = await kefu.api(alice.token, 'POST', `/api/tasks/${msg.task_id}/end`);
    expect(ended.status).toBe(200);

    await chat.getByRole('button', { name: '5 stars' }).click();
    await chat.getByRole('textbox', { name: /comment/i }).fill('quick and kind');
    await chat.getByRole('button', { name: 'Submit rating' }).click();
    await chat.getByText(/thank/i).first().waitFor();
    await shot(page, 'widget-rated');

    const tasks = await kefu.api(alice.token, 'GET', `/api/tasks?customer=${msg.from}`);
    expect(tasks.body.tasks[0].rating).toEqual({ score: 5, comment: 'quick and kind' });
    await context.close();
    await site.stop();
  });

  test('markup in messages shows as text, and a javascript: link is refused and runs nothing', async () => {
    const alice = await agent();
    const { page, chat, context, site, dialogs } = await shop();
    await openWidget(page, chat);
    const payload = '<img src=x onerror=alert(1)>';
    await say(chat, payload);
    const msg = await alice.waitFor((f) => f.category === 'customer', 'the message');
    await alice.reply(msg.from, '<script>alert(2)</script> javascript:alert(3)');
    const card = await alice.reply(msg.from, 'Evil card', {
      style: 'card',
      ext: { title: 'Click me', url: 'javascript:alert(4)' },
    });
    expect(card.ext?.error?.code).toBe('bad_request');
    await chat.getByText(payload).waitFor();
    await chat.getByText('<script>alert(2)</script>', { exact: false }).waitFor();
    await page.waitForTimeout(300);

    expect(dialogs).toEqual([]);
    expect(await chat.locator('a[href^="javascript:"]').count()).toBe(0);
    expect(await chat.locator('img[src="x"]').count()).toBe(0);
    expect(await chat.locator('script').count()).toBe(1); // the app's own
    expect(new URL(page.url()).pathname).toBe('/');
    await context.close();
    await site.stop();
  });

  test('on a phone the chat is full-screen and the input is usable', async () => {
    const alice = await agent();
    const { page, chat, context, site } = await shop(PHONE);
    await shot(page, 'widget-phone-closed');
    await openWidget(page, chat);
    // Full-screen once its opening animation settles.
    await expect
      .poll(async () => {
        const b = await page.locator('iframe[title]').boundingBox();
        return b && [b.x, b.y, b.width, b.height].map(Math.round);
      })
      .toEqual([0, 0, 390, 844]);
    const box = chat.getByRole('textbox', { name: 'Message' });
    expect(await box.evaluate((el) => parseFloat(getComputedStyle(el).fontSize))).toBeGreaterThanOrEqual(16);
    await box.tap();
    await say(chat, 'typed on a phone');
    const msg = await alice.waitFor((f) => f.content === 'typed on a phone', 'the phone message');
    await alice.reply(msg.from, 'Hi! Your parcel left our warehouse this morning.\nTracking: https://track.example.com/SF1234');
    await chat.getByText(/Your parcel left/).waitFor();
    await shot(page, 'widget-phone-open');
    await context.close();
    await site.stop();
  });

  test('the strings follow the browser language', async () => {
    const zh = await shop({ ...DESKTOP, locale: 'zh-CN' });
    await zh.page.getByRole('button', { name: '打开聊天' }).click();
    await zh.chat.getByRole('textbox', { name: '消息' }).waitFor();
    await shot(zh.page, 'widget-zh');
    await zh.context.close();
    await zh.site.stop();

    const en = await shop({ ...DESKTOP, locale: 'en-GB' });
    await openWidget(en.page, en.chat);
    await en.context.close();
    await en.site.stop();
  });

  test('/chat is the same chat as a full page, for a mini-program web view', async () => {
    const alice = await agent();
    const who = await person(browser, PHONE);
    const page = await who.context.newPage();
    const response = await page.goto(`${kefu.url}/chat`);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await say(page, 'from the mini-program');
    await alice.waitFor((f) => f.content === 'from the mini-program', 'the message');
    await shot(page, 'chat-page-phone');
    await who.context.close();
  });
});

const PNG = gradientPng(160, 120);

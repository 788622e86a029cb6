// Two headless Chromium pages chat through the `chat` example; then the server shuts
// down gracefully and both pages see close 1001. Run by run.sh, which starts the
// server and sets CHAT_URL (and CHAT_PID, to send it SIGINT).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const URL = process.env.CHAT_URL;
const PID = Number(process.env.CHAT_PID || 0);
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const STEP = { timeout: 15000 };

test('two pages chat with each other, then the server closes them with 1001', { timeout: 90000 }, async () => {
  assert.ok(URL, 'CHAT_URL is set');
  const userDataDir = mkdtempSync(join(tmpdir(), 'sansock-chat-e2e-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    timeout: 30000,
  });
  try {
    const a = await context.newPage();
    const b = await context.newPage();
    for (const page of [a, b]) {
      await page.goto(URL, STEP);
      await page.locator('#status', { hasText: 'connected' }).waitFor(STEP);
    }
    await a.fill('#msg', 'hello from A');
    await a.click('#send');
    await b.fill('#msg', 'hello from B');
    await b.click('#send');
    for (const page of [a, b]) {
      await page.locator('#log li', { hasText: 'hello from A' }).waitFor(STEP);
      await page.locator('#log li', { hasText: 'hello from B' }).waitFor(STEP);
    }
    const logA = await a.locator('#log li').allTextContents();
    const logB = await b.locator('#log li').allTextContents();
    console.log('page A saw:', logA);
    console.log('page B saw:', logB);
    // The same sender name on both pages for each message.
    const sender = (log, text) => log.find((l) => l.endsWith(text)).split(':')[0];
    assert.equal(sender(logA, 'hello from A'), sender(logB, 'hello from A'));
    assert.equal(sender(logA, 'hello from B'), sender(logB, 'hello from B'));
    assert.notEqual(sender(logA, 'hello from A'), sender(logA, 'hello from B'));

    if (PID) {
      process.kill(PID, 'SIGINT');
      for (const page of [a, b]) {
        await page.locator('#status', { hasText: 'closed (1001' }).waitFor(STEP);
      }
    }
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
});

// Token refresh and session expiry take a minute each (the shortest session is one minute), so
// they run concurrently in their own file, which node --test runs beside chat.test.js.
'use strict';

const { describe, test, after } = require('node:test');
const assert = require('node:assert/strict');
const { SendMessageRequest } = require('amazon-ivs-chat-messaging');
const { createRoom, tokenProvider, join, until, env } = require('./helpers');

const url = env('CHAT_URL');
const rooms = [];
after(() => rooms.forEach((r) => r.room.disconnect()));

describe('sessions', { concurrency: true }, () => {
  test('the SDK refreshes its token on a second connection before expiry', async () => {
    const { arn } = await createRoom();
    const calls = [];
    const u = await join(url, tokenProvider(arn, 'refresher', { capabilities: ['SEND_MESSAGE'], sessionDurationInMinutes: 1, calls }));
    rooms.push(u);
    // One-minute tokens: the SDK opens the next connection 30 s before expiry and switches to it
    // (the room stays "connected" throughout, so no second connect event is fired).
    await until(() => calls.length >= 2, 'a second token for the next connection', 50000);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(u.room.state, 'connected');
    assert.deepEqual(u.disconnects, []);
    const m = await u.room.sendMessage(new SendMessageRequest('after refresh'));
    assert.equal(m.content, 'after refresh');
  });

  test('an expired session gets ERROR 401 and the SDK reconnects with a fresh token', async () => {
    const { arn } = await createRoom();
    const calls = [];
    // Without tokenExpirationTime the SDK schedules no refresh, so the server ends the session.
    const u = await join(url, tokenProvider(arn, 'expiring', { capabilities: ['SEND_MESSAGE'], sessionDurationInMinutes: 1, calls, omitExpiry: true }));
    rooms.push(u);
    await until(() => calls.length >= 2 && u.connects >= 2, 'a reconnection after the session ended', 75000);
    assert.deepEqual(u.disconnects, []);
    const m = await u.room.sendMessage(new SendMessageRequest('after expiry'));
    assert.equal(m.content, 'after expiry');
  });
});

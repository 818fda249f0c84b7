// Shared set-up for the chat tests: the WebSocket implementation under test, the real
// @aws-sdk/client-ivschat client pointed at Glasscast, and a ChatRoom with recorded events.
'use strict';

const assert = require('node:assert/strict');

// CHAT_WS=ws installs the `ws` polyfill; CHAT_WS=undici expects `node --experimental-websocket`,
// whose browser-like WebSocket drops binary frames the way browsers do.
if (process.env.CHAT_WS === 'undici') {
  assert.equal(typeof globalThis.WebSocket, 'function', 'run with node --experimental-websocket');
} else {
  globalThis.WebSocket = require('ws');
}

const { ChatRoom } = require('amazon-ivs-chat-messaging');
const ivschat = require('@aws-sdk/client-ivschat');

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `environment variable ${name} is required (the Go test e2e/chat_node_test.go sets it)`);
  return v;
};

const client = new ivschat.IvschatClient({
  region: env('AWS_REGION'),
  endpoint: env('GLASSCAST_ENDPOINT'),
  credentials: { accessKeyId: env('AWS_ACCESS_KEY_ID'), secretAccessKey: env('AWS_SECRET_ACCESS_KEY') },
  maxAttempts: 1,
});

const send = (Command, input) => client.send(new Command(input));

async function createRoom(input = {}) {
  return send(ivschat.CreateRoomCommand, input);
}

// tokenProvider mints a fresh token per call through the API, as a page's backend would.
function tokenProvider(roomArn, userId, { attributes, capabilities, sessionDurationInMinutes, omitExpiry, calls } = {}) {
  return async () => {
    const out = await send(ivschat.CreateChatTokenCommand, {
      roomIdentifier: roomArn, userId, attributes, capabilities, sessionDurationInMinutes,
    });
    if (calls) calls.push(out);
    if (omitExpiry) return { token: out.token };
    return { token: out.token, tokenExpirationTime: out.tokenExpirationTime, sessionExpirationTime: out.sessionExpirationTime };
  };
}

// join connects a ChatRoom and records what it hears.
async function join(url, provider, { maxReconnectAttempts } = {}) {
  const room = new ChatRoom({ regionOrUrl: url, tokenProvider: provider, maxReconnectAttempts });
  room.logLevel = 'error';
  room.logger = { debug() {}, info() {}, warn() {}, error() {} };
  const rec = { room, messages: [], events: [], deletes: [], kicks: [], disconnects: [], connects: 0, connecting: 0 };
  room.addListener('message', (m) => rec.messages.push(m));
  room.addListener('event', (e) => rec.events.push(e));
  room.addListener('messageDelete', (e) => rec.deletes.push(e));
  room.addListener('userDisconnect', (e) => rec.kicks.push(e));
  room.addListener('disconnect', (r) => rec.disconnects.push(r));
  room.addListener('connecting', () => rec.connecting++);
  const connected = new Promise((resolve) => room.addListener('connect', () => { rec.connects++; resolve(); }));
  room.connect();
  await connected;
  return rec;
}

// until polls cond for up to ms.
async function until(cond, what, ms = 15000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

// rejection awaits a promise that must reject with a chat error and returns the error.
async function rejection(p) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail('the request was not rejected');
}

module.exports = { ivschat, send, createRoom, tokenProvider, join, until, rejection, env, ChatRoom };

// The amazon-ivs-chat-messaging SDK against Glasscast: what a page does with it, unchanged but for
// the chat URL and the API endpoint.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { SendMessageRequest, DeleteMessageRequest, DisconnectUserRequest } = require('amazon-ivs-chat-messaging');
const { ivschat, send, createRoom, tokenProvider, join, until, rejection, env } = require('./helpers');

const url = env('CHAT_URL');
const all = ['SEND_MESSAGE', 'DELETE_MESSAGE', 'DISCONNECT_USER'];
const rooms = [];
after(() => rooms.forEach((r) => r.room.disconnect()));
const track = (r) => { rooms.push(r); return r; };

test('two users send and receive with sender attributes, delete and kick', async () => {
  const { arn } = await createRoom({ name: 'my-stream-chat', maximumMessageLength: 500, maximumMessageRatePerSecond: 10 });
  const alice = track(await join(url, tokenProvider(arn, 'alice', { attributes: { username: 'Alice' }, capabilities: all })));
  const bob = track(await join(url, tokenProvider(arn, 'bob', { attributes: { username: 'Bob' }, capabilities: ['SEND_MESSAGE'] })));

  const sent = await alice.room.sendMessage(new SendMessageRequest('hello bob', { color: 'red' }));
  assert.equal(sent.content, 'hello bob');
  assert.equal(sent.sender.userId, 'alice');
  assert.deepEqual(sent.sender.attributes, { username: 'Alice' });
  assert.deepEqual(sent.attributes, { color: 'red' });
  assert.ok(sent.sendTime instanceof Date && !isNaN(sent.sendTime));
  const reply = await bob.room.sendMessage(new SendMessageRequest('hi alice'));
  await until(() => bob.messages.some((m) => m.id === sent.id), 'bob to get alice\'s message');
  await until(() => alice.messages.some((m) => m.id === reply.id), 'alice to get bob\'s reply');
  const got = bob.messages.find((m) => m.id === sent.id);
  assert.equal(got.content, 'hello bob');
  assert.deepEqual(got.sender, { userId: 'alice', attributes: { username: 'Alice' } });
  assert.deepEqual(alice.messages.find((m) => m.id === reply.id).sender.attributes, { username: 'Bob' });

  const del = await alice.room.deleteMessage(new DeleteMessageRequest(reply.id, 'off topic'));
  assert.equal(del.messageId, reply.id);
  await until(() => bob.deletes.some((d) => d.messageId === reply.id && d.reason === 'off topic'), 'bob to see the deletion');

  const kick = await alice.room.disconnectUser(new DisconnectUserRequest('bob', 'bye'));
  assert.equal(kick.userId, 'bob');
  await until(() => bob.disconnects.includes('serverDisconnect'), 'bob to be disconnected by the server');
  await until(() => alice.kicks.some((k) => k.userId === 'bob'), 'alice to see the kick');
  assert.equal(alice.room.state, 'connected');
});

test('a missing capability is refused with 403', async () => {
  const { arn } = await createRoom();
  const viewer = track(await join(url, tokenProvider(arn, 'viewer')));
  for (const req of [new SendMessageRequest('x'), new DeleteMessageRequest('abcdefABCDEF'), new DisconnectUserRequest('someone')]) {
    const err = await rejection(viewer.room[{ SEND_MESSAGE: 'sendMessage', DELETE_MESSAGE: 'deleteMessage', DISCONNECT_USER: 'disconnectUser' }[req.action]](req));
    assert.equal(err.errorCode, 403, req.action);
  }
});

test('a 501-code-point message is refused while 500 emoji pass', async () => {
  const { arn } = await createRoom();
  const u = track(await join(url, tokenProvider(arn, 'u', { capabilities: ['SEND_MESSAGE'] })));
  const emoji = '😀'.repeat(500); // 500 code points, 1000 UTF-16 units, 2000 bytes
  const ok = await u.room.sendMessage(new SendMessageRequest(emoji));
  assert.equal(ok.content, emoji);
  const err = await rejection(u.room.sendMessage(new SendMessageRequest('a'.repeat(501))));
  assert.equal(err.errorCode, 413);
});

test('a burst over the room rate gets 429', async () => {
  const { arn } = await createRoom({ maximumMessageRatePerSecond: 3 });
  const u = track(await join(url, tokenProvider(arn, 'u', { capabilities: ['SEND_MESSAGE'] })));
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => u.room.sendMessage(new SendMessageRequest(`m${i}`))));
  const refused = results.filter((r) => r.status === 'rejected');
  assert.ok(refused.length >= 5, `only ${refused.length} of 8 refused at 3/s`);
  refused.forEach((r) => assert.equal(r.reason.errorCode, 429));
});

test('a used token cannot connect again', async () => {
  const { arn } = await createRoom();
  const out = await send(ivschat.CreateChatTokenCommand, { roomIdentifier: arn, userId: 'once' });
  const same = async () => ({ token: out.token, tokenExpirationTime: out.tokenExpirationTime });
  track(await join(url, same));
  const { ChatRoom } = require('amazon-ivs-chat-messaging');
  const second = new ChatRoom({ regionOrUrl: url, tokenProvider: same, maxReconnectAttempts: 1 });
  second.logger = { debug() {}, info() {}, warn() {}, error() {} };
  const reason = await new Promise((resolve) => {
    second.addListener('connect', () => resolve('connected'));
    second.addListener('disconnect', resolve);
    second.connect();
  });
  assert.equal(reason, 'socketError');
});

test('SendEvent, DeleteMessage and DisconnectUser from the API reach the clients', async () => {
  const { arn } = await createRoom();
  const u = track(await join(url, tokenProvider(arn, 'u', { capabilities: ['SEND_MESSAGE'] })));
  const w = track(await join(url, tokenProvider(arn, 'w')));
  const ev = await send(ivschat.SendEventCommand, { roomIdentifier: arn, eventName: 'app:poll', attributes: { question: 'tea?' } });
  await until(() => w.events.some((e) => e.id === ev.id && e.eventName === 'app:poll' && e.attributes.question === 'tea?'), 'the API event');
  const m = await u.room.sendMessage(new SendMessageRequest('delete me'));
  await send(ivschat.DeleteMessageCommand, { roomIdentifier: arn, id: m.id, reason: 'moderated' });
  await until(() => w.deletes.some((d) => d.messageId === m.id && d.reason === 'moderated'), 'the API deletion');
  await send(ivschat.DisconnectUserCommand, { roomIdentifier: arn, userId: 'u', reason: 'banned' });
  await until(() => u.disconnects.includes('serverDisconnect'), 'u to be disconnected');
  await until(() => w.kicks.some((k) => k.userId === 'u' && k.reason === 'banned'), 'w to see the kick');
});

test('two edges in separate processes deliver each other\'s messages', async () => {
  const url2 = env('CHAT_URL2');
  const { arn } = await createRoom();
  const a = track(await join(url, tokenProvider(arn, 'on-edge-1', { capabilities: ['SEND_MESSAGE'] })));
  const b = track(await join(url2, tokenProvider(arn, 'on-edge-2', { capabilities: ['SEND_MESSAGE'] })));
  const sent = [];
  for (let i = 0; i < 5; i++) {
    sent.push((await a.room.sendMessage(new SendMessageRequest(`a${i}`))).id);
    sent.push((await b.room.sendMessage(new SendMessageRequest(`b${i}`))).id);
  }
  await until(() => a.messages.length >= 10 && b.messages.length >= 10, 'both edges to see all 10 messages');
  // Same messages, same order, once each, on both edges.
  assert.deepEqual(a.messages.map((m) => m.id), b.messages.map((m) => m.id));
  assert.deepEqual([...a.messages.map((m) => m.id)].sort(), [...sent].sort());
  await send(ivschat.DisconnectUserCommand, { roomIdentifier: arn, userId: 'on-edge-2' });
  await until(() => b.disconnects.includes('serverDisconnect'), 'a kick from the API to reach the second edge');
});

test('a review webhook that denies, edits, and sleeps past 200 ms', async () => {
  const http = require('node:http');
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const p = JSON.parse(body);
      seen.push(p);
      const reply = (o) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(o)); };
      if (p.Content.includes('badword')) return reply({ ReviewResult: 'DENY', Attributes: { Reason: 'no bad words' } });
      if (p.Content.startsWith('edit:')) return reply({ ReviewResult: 'ALLOW', Content: p.Content.replace('edit:', 'edited:'), Attributes: { reviewed: 'yes' } });
      if (p.Content.startsWith('slow')) return setTimeout(() => reply({ ReviewResult: 'ALLOW' }), 400);
      return reply({ ReviewResult: 'ALLOW' });
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  after(() => server.close());
  const hook = `http://127.0.0.1:${server.address().port}/review`;
  const allowRoom = await createRoom({ messageReviewHandler: { uri: hook, fallbackResult: 'ALLOW' } });
  const denyRoom = await createRoom({ messageReviewHandler: { uri: hook, fallbackResult: 'DENY' } });
  const u = track(await join(url, tokenProvider(allowRoom.arn, 'u', { capabilities: ['SEND_MESSAGE'], attributes: { name: 'U' } })));
  const other = track(await join(url, tokenProvider(allowRoom.arn, 'other')));

  const denied = await rejection(u.room.sendMessage(new SendMessageRequest('a badword here')));
  assert.equal(denied.errorCode, 406);
  assert.equal(denied.errorMessage, 'no bad words');
  const edited = await u.room.sendMessage(new SendMessageRequest('edit:hello', { a: 'b' }));
  assert.equal(edited.content, 'edited:hello');
  assert.deepEqual(edited.attributes, { reviewed: 'yes' });
  const payload = seen.find((p) => p.Content === 'edit:hello');
  assert.equal(payload.RoomArn, allowRoom.arn);
  assert.equal(payload.MessageId, edited.id);
  assert.deepEqual(payload.Attributes, { a: 'b' });
  assert.equal(payload.Sender.UserId, 'u');
  assert.deepEqual(payload.Sender.Attributes, { name: 'U' });
  assert.equal(payload.Sender.Ip, '127.0.0.1');
  // Too slow: the fallback result applies (ALLOW here, DENY in the other room).
  const slow = await u.room.sendMessage(new SendMessageRequest('slow one'));
  assert.equal(slow.content, 'slow one');
  const d = track(await join(url, tokenProvider(denyRoom.arn, 'd', { capabilities: ['SEND_MESSAGE'] })));
  assert.equal((await rejection(d.room.sendMessage(new SendMessageRequest('slow two')))).errorCode, 406);
  // The denied message reached nobody.
  await until(() => other.messages.length === 2, 'the two allowed messages');
  assert.ok(!other.messages.some((m) => m.content.includes('badword')));
});

test('logged records equal the frames received', async () => {
  const dataDir = env('GLASSCAST_DATA_DIR');
  const cfg = await send(ivschat.CreateLoggingConfigurationCommand, { name: 'node-logs', destinationConfiguration: { cloudWatchLogs: { logGroupName: 'node/chat' } } });
  const { arn, id } = await createRoom({ loggingConfigurationIdentifiers: [cfg.arn] });
  const u = track(await join(url, tokenProvider(arn, 'logger', { capabilities: all, attributes: { k: 'v' } })));
  const m1 = await u.room.sendMessage(new SendMessageRequest('logged one', { x: 'y' }));
  await u.room.deleteMessage(new DeleteMessageRequest(m1.id, 'gone'));
  const ev = await send(ivschat.SendEventCommand, { roomIdentifier: arn, eventName: 'app:logged' });
  const file = path.join(dataDir, 'chat-logs', 'node/chat', 'aws/IVSChatLogs/1.0', `room_${id}.log`);
  let records = [];
  await until(() => {
    try {
      records = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    } catch { return false; }
    return records.length >= 3;
  }, `three records in ${file}`);
  assert.equal(records.length, 3);
  const [r1, r2, r3] = records;
  for (const r of records) {
    assert.equal(r.version, '1.0');
    assert.match(r.event_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  }
  assert.equal(r1.type, 'MESSAGE');
  assert.equal(r1.payload.Id, m1.id);
  assert.equal(r1.payload.Content, 'logged one');
  assert.deepEqual(r1.payload.Attributes, { x: 'y' });
  assert.deepEqual(r1.payload.Sender, { UserId: 'logger', Attributes: { k: 'v' } });
  assert.equal(new Date(r1.payload.SendTime).getTime(), m1.sendTime.getTime());
  assert.equal(r2.type, 'EVENT');
  assert.equal(r2.payload.EventName, 'aws:DELETE_MESSAGE');
  assert.equal(r2.payload.Attributes.MessageID, m1.id);
  assert.equal(r3.payload.Id, ev.id);
  assert.equal(r3.payload.EventName, 'app:logged');
});

#!/usr/bin/env node
// An independent implementation of the EduSphere chat WebSocket protocol (seed:
// websocket-api.md), in plain Node.js with `ws`. Written from the seed and the protocol notes
// only, to check that the conformance harness passes a correct server it was not written
// against. See README.md beside this file for how its open choices differ from the bundled
// Python reference server.
//
//   ALT_JWT_SECRET=... node server.js --data=FIXTURES.json [--port=N]
//
// FIXTURES.json: {"users": [{"username", "email", "avatar"}], "rooms": [{"host", "slug",
// "participants": [username, ...]}]}. Messages are journalled to FIXTURES.messages.jsonl and
// replayed at start, so they survive a restart. The port comes from --port, else ALT_PORT,
// else 0 (a free port). One line goes to stdout once the server listens:
//   listening on ws://127.0.0.1:PORT/ws/chat/{host}/{room}/

'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { WebSocketServer, WebSocket } = require('ws');

const MAX_LENGTH = 500; // code points (seed: "Message exceeds {max} characters.")
const MAX_PAYLOAD = 64 * 1024; // bytes; `ws` closes a larger frame with 1009
const MAX_BUFFERED = 32 * 1024 * 1024; // a client this far behind is dropped, never waited for
const HEARTBEAT_MS = 30000;
const CLOSE_AUTH = 4401;
const CLOSE_NOT_PARTICIPANT = 4403;
const CLOSE_NO_ROOM = 4404;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const B64URL_RE = /^[A-Za-z0-9_-]+$/;
const ROUTE_RE = /^\/ws\/chat\/([^/]+)\/([^/]+)\/$/;

const ERR = {
  tooLong: `Message exceeds ${MAX_LENGTH} characters.`,
  notFound: 'Message not found.',
  notYourDelete: 'You can only delete your own messages.',
  notYourEdit: 'You can only edit your own messages.',
  // Wording of our own for what the seed leaves open:
  notJson: 'Malformed frame: the text is not valid JSON.',
  notObject: 'Malformed frame: a JSON object is required.',
  binary: 'Binary frames are not supported; send JSON text.',
  noType: 'Malformed frame: the "type" field is required.',
  badType: 'Unsupported frame type; expected "text", "update" or "delete".',
  badMessage: 'The "message" field must be a non-empty string.',
};

// --- command line -----------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = { data: null, port: process.env.ALT_PORT || '0' };
  for (const arg of argv) {
    if (arg.startsWith('--data=')) opts.data = arg.slice('--data='.length);
    else if (arg.startsWith('--port=')) opts.port = arg.slice('--port='.length);
    else if (!arg.startsWith('--') && opts.data === null) opts.data = arg;
    else fatal(`unknown argument ${arg}`);
  }
  if (!opts.data) fatal('usage: node server.js --data=FIXTURES.json [--port=N]');
  const port = Number(opts.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fatal(`bad port ${opts.port}`);
  return { data: path.resolve(opts.data), port };
}

function fatal(message) {
  process.stderr.write(`server.js: ${message}\n`);
  process.exit(2);
}

function log(message) {
  if (process.env.ALT_LOG) process.stderr.write(`${new Date().toISOString()} ${message}\n`);
}

// --- data -------------------------------------------------------------------------------------

class Store {
  constructor(fixturePath) {
    const fixture = JSON.parse(fs.readFileSync(fixturePath, 'utf8'));
    this.users = new Map(); // username -> {id, username, email, avatar}
    (fixture.users || []).forEach((u, i) => {
      this.users.set(u.username, {
        id: i + 1, // integer ids: the seed shows a UUID, deployments differ
        username: u.username,
        email: u.email || null,
        avatar: u.avatar || null,
      });
    });
    this.rooms = new Map(); // "host/slug" -> room
    (fixture.rooms || []).forEach((r, i) => {
      const host = this.users.get(r.host);
      if (!host) fatal(`room ${r.slug}: unknown host ${r.host}`);
      const members = new Set([host.id]);
      for (const name of r.participants || []) {
        const user = this.users.get(name);
        if (!user) fatal(`room ${r.slug}: unknown participant ${name}`);
        members.add(user.id);
      }
      this.rooms.set(`${r.host}/${r.slug}`, {
        id: i + 1,
        host: host.username,
        slug: r.slug,
        members,
        messages: new Map(), // message id -> {id, userId, body, created, updated, edited}
        clients: new Set(),
      });
    });
    this.roomsById = new Map([...this.rooms.values()].map((r) => [r.id, r]));
    const base = path.basename(fixturePath, path.extname(fixturePath));
    this.journal = path.join(path.dirname(fixturePath), `${base}.messages.jsonl`);
    this.replay();
  }

  room(host, slug) {
    return this.rooms.get(`${host}/${slug}`) || null;
  }

  // The journal: one JSON line per change, appended synchronously before the event goes out.
  replay() {
    let text = '';
    try {
      text = fs.readFileSync(this.journal, 'utf8');
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
      return;
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        continue; // a torn last line after a crash
      }
      const room = this.roomsById.get(entry.room);
      if (!room) continue;
      if (entry.op === 'new') room.messages.set(entry.message.id, entry.message);
      else if (entry.op === 'update') {
        const m = room.messages.get(entry.id);
        if (m) Object.assign(m, { body: entry.body, updated: entry.updated, edited: true });
      } else if (entry.op === 'delete') room.messages.delete(entry.id);
    }
    // Compact: rewrite the journal as one "new" line per surviving message.
    const lines = [];
    for (const room of this.rooms.values()) {
      for (const m of room.messages.values()) {
        lines.push(JSON.stringify({ op: 'new', room: room.id, message: m }));
      }
    }
    const tmp = `${this.journal}.tmp`;
    fs.writeFileSync(tmp, lines.map((l) => `${l}\n`).join(''));
    fs.renameSync(tmp, this.journal);
  }

  record(entry) {
    fs.appendFileSync(this.journal, `${JSON.stringify(entry)}\n`);
  }
}

// --- JWT (HS256, by hand) ---------------------------------------------------------------------

function decodeJsonPart(part) {
  if (!B64URL_RE.test(part)) return null;
  const buf = Buffer.from(part, 'base64url');
  if (buf.toString('base64url') !== part) return null; // not canonical base64url
  try {
    const value = JSON.parse(buf.toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/** The claims of a valid token, or null. */
function verifyJwt(token, secret) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const [h, p, s] = parts;
  const header = decodeJsonPart(h);
  if (!header || header.alg !== 'HS256' || header.crit !== undefined) return null; // no `none`
  if (!B64URL_RE.test(s)) return null;
  const signature = Buffer.from(s, 'base64url');
  if (signature.toString('base64url') !== s) return null;
  const expected = crypto.createHmac('sha256', secret).update(`${h}.${p}`).digest();
  if (signature.length !== expected.length || !crypto.timingSafeEqual(signature, expected)) {
    return null;
  }
  const claims = decodeJsonPart(p);
  if (!claims) return null;
  const now = Date.now() / 1000;
  if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp) || claims.exp <= now) {
    return null; // exp is required here
  }
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now + 30)) {
    return null;
  }
  if (typeof claims.username !== 'string' || !claims.username) return null;
  return claims;
}

function parseCookies(header) {
  const out = new Map();
  if (!header) return out;
  for (const piece of header.split(';')) {
    const eq = piece.indexOf('=');
    if (eq < 0) continue;
    const name = piece.slice(0, eq).trim();
    let value = piece.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1);
    }
    try {
      value = decodeURIComponent(value);
    } catch {
      // keep it raw
    }
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

/** The token from `Authorization: Bearer` or, failing that, the `access_token` cookie. */
function tokenOf(req) {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    return m ? m[1] : null;
  }
  return parseCookies(req.headers.cookie).get('access_token') || null;
}

// --- protocol ---------------------------------------------------------------------------------

function codePoints(text) {
  return [...text].length;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

class Chat {
  constructor(store) {
    this.store = store;
  }

  // Fan-out never waits for a client: ws.send only queues. A client too far behind is dropped.
  broadcast(room, event) {
    const data = JSON.stringify({ ...event, roomId: room.id });
    for (const client of room.clients) {
      if (client.readyState !== WebSocket.OPEN) continue;
      if (client.bufferedAmount > MAX_BUFFERED) {
        log(`dropping a client ${client.bufferedAmount} bytes behind`);
        client.terminate();
        continue;
      }
      client.send(data, noop);
    }
  }

  reply(ws, error) {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ error }), noop);
  }

  handle(ws, data, isBinary) {
    if (isBinary) return this.reply(ws, ERR.binary);
    let frame;
    try {
      frame = JSON.parse(data.toString('utf8'));
    } catch {
      return this.reply(ws, ERR.notJson);
    }
    if (!isObject(frame)) return this.reply(ws, ERR.notObject);
    if (!Object.prototype.hasOwnProperty.call(frame, 'type')) return this.reply(ws, ERR.noType);
    switch (frame.type) {
      case 'text':
        return this.text(ws, frame);
      case 'update':
        return this.update(ws, frame);
      case 'delete':
        return this.remove(ws, frame);
      default:
        return this.reply(ws, ERR.badType);
    }
  }

  text(ws, frame) {
    const { room, user } = ws.chat;
    const body = frame.message;
    if (typeof body !== 'string' || body.length === 0) return this.reply(ws, ERR.badMessage);
    if (codePoints(body) > MAX_LENGTH) return this.reply(ws, ERR.tooLong);
    const now = new Date().toISOString();
    const message = {
      id: crypto.randomUUID(),
      userId: user.id,
      body,
      created: now,
      updated: now,
      edited: false,
    };
    room.messages.set(message.id, message);
    this.store.record({ op: 'new', room: room.id, message });
    this.broadcast(room, {
      type: 'chat_message',
      action: 'new',
      id: message.id,
      user: user.username,
      user_id: user.id,
      body: message.body,
      created: message.created,
      edited: false,
      updated: message.updated,
      userAvatar: user.avatar,
    });
  }

  // Lookup first (unknown, deleted, malformed and other-room ids are all "not found"), then
  // authorship, then the new text.
  find(ws, frame) {
    const id = frame.messageId;
    if (typeof id !== 'string' || !UUID_RE.test(id)) return null;
    return ws.chat.room.messages.get(id.toLowerCase()) || null;
  }

  update(ws, frame) {
    const { room, user } = ws.chat;
    const message = this.find(ws, frame);
    if (!message) return this.reply(ws, ERR.notFound);
    if (message.userId !== user.id) return this.reply(ws, ERR.notYourEdit);
    const body = frame.message;
    if (typeof body !== 'string' || body.length === 0) return this.reply(ws, ERR.badMessage);
    if (codePoints(body) > MAX_LENGTH) return this.reply(ws, ERR.tooLong);
    message.body = body;
    message.edited = true;
    message.updated = new Date().toISOString();
    this.store.record({
      op: 'update',
      room: room.id,
      id: message.id,
      body,
      updated: message.updated,
    });
    this.broadcast(room, {
      type: 'chat_message',
      action: 'update',
      id: message.id,
      body: message.body,
      edited: true,
      updated: message.updated,
    });
  }

  remove(ws, frame) {
    const { room, user } = ws.chat;
    const message = this.find(ws, frame);
    if (!message) return this.reply(ws, ERR.notFound);
    if (message.userId !== user.id) return this.reply(ws, ERR.notYourDelete);
    room.messages.delete(message.id);
    this.store.record({ op: 'delete', room: room.id, id: message.id });
    this.broadcast(room, { type: 'chat_message', action: 'delete', id: message.id });
  }
}

function noop() {}

// --- server -----------------------------------------------------------------------------------

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const secret = process.env.ALT_JWT_SECRET;
  if (!secret) fatal('ALT_JWT_SECRET is not set');
  const store = new Store(opts.data);
  const chat = new Chat(store);
  // A restart script may read our stdout only up to the listening line and then go away.
  process.stdout.on('error', noop);

  const server = http.createServer((req, res) => {
    res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket' });
    res.end('WebSocket endpoint: /ws/chat/{host}/{room}/\n');
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_PAYLOAD,
    perMessageDeflate: false,
  });

  server.on('upgrade', (req, socket, head) => {
    socket.on('error', noop);
    let route = null;
    try {
      const { pathname } = new URL(req.url, 'http://localhost');
      const m = ROUTE_RE.exec(pathname);
      if (m) route = { host: decodeURIComponent(m[1]), slug: decodeURIComponent(m[2]) };
    } catch {
      route = null;
    }
    if (!route) {
      // Only the trailing-slash form is routed; everything else is an HTTP 404.
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => admit(ws, req, route));
  });

  // Refusals use the "close" style: the handshake is accepted, then closed at once.
  function admit(ws, req, route) {
    ws.on('error', (err) => log(`socket error: ${err.message}`));
    const claims = verifyJwt(tokenOf(req), secret);
    const user = claims && store.users.get(claims.username);
    if (!user) return ws.close(CLOSE_AUTH, 'Authentication required');
    const room = store.room(route.host, route.slug);
    if (!room) return ws.close(CLOSE_NO_ROOM, 'Room not found');
    if (!room.members.has(user.id)) return ws.close(CLOSE_NOT_PARTICIPANT, 'Not a participant');

    ws.chat = { room, user };
    ws.alive = true;
    room.clients.add(ws);
    ws.on('pong', () => {
      ws.alive = true;
    });
    ws.on('message', (data, isBinary) => {
      try {
        chat.handle(ws, data, isBinary);
      } catch (err) {
        log(`handler error: ${err.stack}`);
        chat.reply(ws, 'Internal error.');
      }
    });
    ws.on('close', () => room.clients.delete(ws));
  }

  const heartbeat = setInterval(() => {
    for (const room of store.rooms.values()) {
      for (const ws of room.clients) {
        if (!ws.alive) {
          ws.terminate();
          continue;
        }
        ws.alive = false;
        ws.ping(noop);
      }
    }
  }, HEARTBEAT_MS);
  heartbeat.unref();

  let stopping = false;
  function shutdown() {
    if (stopping) return;
    stopping = true;
    clearInterval(heartbeat);
    server.close();
    for (const ws of wss.clients) ws.close(1001, 'Server shutting down');
    const done = () => {
      for (const ws of wss.clients) ws.terminate();
      process.exit(0);
    };
    const timer = setTimeout(done, 300);
    const poll = setInterval(() => {
      if (wss.clients.size === 0) {
        clearTimeout(timer);
        clearInterval(poll);
        done();
      }
    }, 10);
  }
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  server.listen(opts.port, '127.0.0.1', () => {
    const { port } = server.address();
    process.stdout.write(`listening on ws://127.0.0.1:${port}/ws/chat/{host}/{room}/\n`);
  });
}

main();

// Rooms for the chat demo (protocol version 2 channels): join a room, see its
// publications (sender, time, text), members and history, publish to it,
// leave it. A room name becomes the channel `room:<name>`; a name with a ":"
// is taken as a whole channel name (any namespace). The server needs that
// namespace in CHANNELS_CONFIG, e.g.
//
//   [namespaces.room]
//   public = true
//   client_publish = true
//   history_size = 50
//   history_ttl_secs = 3600
//   presence = true
//   join_leave = true
//
// (README, "Demo page and live dashboard"). A client cannot ask which
// namespaces a server has, so a server without it shows up as refusals: in
// token mode `subscribe` is `forbidden` (not public), in insecure mode the
// join works (the defaults) but `publish` is `forbidden` (no client_publish).
// Either refusal of a `room:` channel says "rooms are unavailable" once,
// instead of an error per attempt. This file is appended to chat.js in the
// page's one module script (src/web/mod.rs): `roomsDemo` is a hoisted
// function declaration so chat.js can call it whatever the order, and every
// other name stays inside it. The library does the protocol (subscriptions
// that survive reconnects and recover); this code only draws it.

function roomsDemo({ $, log, show }) {
  const HISTORY_LIMIT = 50;
  const MAX_MESSAGES = 400;
  const ROOM_PREFIX = 'room:';

  const rooms = new Map();   // channel -> room (its subscription and DOM)
  const leaving = new Set(); // channels whose `unsubscribed` answer is awaited
  let client = null;         // the page's current client, or null
  let alive = false;         // that client may send (chat.js's setState says)
  let selected = null;       // the room shown and published to

  const el = (tag, className, text) => {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const clock = (ts) => {
    const d = new Date(ts);
    return Number.isNaN(d.getTime()) ? String(ts) : d.toTimeString().slice(0, 8);
  };
  const channelOf = (name) => (name.includes(':') ? name : ROOM_PREFIX + name);
  const isRoom = (channel) => channel.startsWith(ROOM_PREFIX);

  // The server has no usable `room` namespace (see the top): say so, and what
  // it needs; a later successful publication to a room takes it back.
  function setUnavailable(why) {
    const box = $('rooms-unavailable');
    $('rooms').dataset.available = why ? 'false' : 'true';
    box.hidden = !why;
    box.textContent = why
      ? 'Rooms are unavailable on this server: it ' + why + '. It needs a [namespaces.room] with public = true '
        + 'and client_publish = true in the file named by CHANNELS_CONFIG (see “Server setup”).'
      : '';
  }

  function setRoomState(room, state, text) {
    room.item.dataset.state = state;
    room.pill.dataset.state = state;
    room.pill.textContent = text;
  }

  // One line of a room's view. Entries with an offset stay in offset order,
  // so history fetched after the join lands before the live publications.
  function addLine(room, li, offset) {
    const list = room.list;
    let before = null;
    if (typeof offset === 'number') {
      li.dataset.offset = String(offset);
      before = [...list.children].find((c) => c.dataset.offset !== undefined && Number(c.dataset.offset) > offset) || null;
    }
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    list.insertBefore(li, before);
    while (list.children.length > MAX_MESSAGES) {
      const old = list.firstChild;
      if (old.dataset.offset !== undefined) room.offsets.delete(Number(old.dataset.offset));
      list.removeChild(old);
    }
    if (stick) list.scrollTop = list.scrollHeight;
  }

  function note(room, text) {
    const li = el('li', 'note');
    li.append(el('span', 'time', clock(Date.now())), el('span', 'text', text));
    addLine(room, li);
  }

  // A publication, live or from history; each offset is shown once.
  function addPublication(room, p, fromHistory) {
    if (typeof p.offset === 'number') {
      if (room.offsets.has(p.offset)) return;
      room.offsets.add(p.offset);
    }
    const me = client && client.welcome ? client.welcome.userId : null;
    const li = el('li', 'publication' + (fromHistory ? ' history' : '') + (p.senderId && p.senderId === me ? ' mine' : ''));
    li.dataset.id = p.id;
    const time = el('span', 'time', clock(p.timestamp));
    time.title = p.timestamp;
    li.append(time, el('span', 'sender', p.senderId || 'the server'), el('span', 'text', show(p.payload)));
    if (fromHistory) li.appendChild(el('span', 'tag', 'history'));
    addLine(room, li, p.offset);
    if (room !== selected && !fromHistory) {
      room.unread++;
      room.badge.textContent = String(room.unread);
    }
  }

  // On a fresh subscription of a room with history: the kept publications up
  // to the join (later ones come live); a room without history is fine too.
  function loadHistory(room, ctx, gen) {
    room.sub.history({ limit: HISTORY_LIMIT }).then((h) => {
      if (room.gen !== gen) return;
      const pubs = (h.publications || []).filter((p) => typeof p.offset !== 'number' || p.offset <= ctx.offset);
      const shown = pubs.filter((p) => !room.offsets.has(p.offset));
      for (const p of shown) addPublication(room, { ...p, channel: room.channel }, true);
      if (shown.length) log('history', room.channel, shown.length + ' earlier message' + (shown.length === 1 ? '' : 's'), 'history');
    }, (err) => {
      if (room.gen !== gen) return;
      if (err.code === 'not_available') log('info', room.channel + ': no history kept', null, 'sys');
      else log('error', 'history of ' + room.channel + ': ' + err.code + ': ' + err.message, null, 'error');
    });
  }

  // The member list, when the namespace has presence (hidden otherwise).
  function refreshMembers(room, gen) {
    if (room.presence === false || !room.sub) return;
    const asked = ++room.presenceAsked;
    room.sub.presence().then((a) => {
      if (room.gen !== gen || asked !== room.presenceAsked) return;
      room.presence = true;
      room.membersBox.hidden = false;
      room.members.replaceChildren(...a.users.map((u) => {
        const li = el('li', null, u.userId);
        li.dataset.user = u.userId;
        if (u.connections > 1) li.appendChild(el('small', null, ' ×' + u.connections));
        return li;
      }));
      room.membersCount.textContent = '(' + a.users.length + (a.truncated ? '+' : '') + ')';
    }, (err) => {
      if (room.gen !== gen) return;
      if (err.code === 'not_available') {
        room.presence = false;
        room.membersBox.hidden = true;
      } else if (err.code !== 'disconnected' && err.code !== 'closed') {
        log('error', 'members of ' + room.channel + ': ' + err.code + ': ' + err.message, null, 'error');
      }
    });
  }

  function onSubscribed(room, ctx, gen) {
    room.joined = true;
    setRoomState(room, 'open', 'joined');
    if (ctx.epoch !== room.epoch) room.offsets.clear();
    room.epoch = ctx.epoch;
    const history = typeof ctx.offset === 'number' ? 'history kept, newest offset ' + ctx.offset : 'no history';
    if (ctx.resubscribed) {
      const words = ctx.recovered ? 'recovered: nothing missed'
        : typeof ctx.offset === 'number' ? 'not recovered: messages may have been missed'
          : 'no history kept: publications made while away are not shown';
      log('rejoined', room.channel, words, 'rejoined');
      note(room, 'reconnected, ' + words);
    } else {
      log('joined', room.channel, history, 'joined');
      if (typeof ctx.offset === 'number' && ctx.offset > 0) loadHistory(room, ctx, gen);
    }
    refreshMembers(room, gen);
  }

  // Subscribes `room` on the current client; events of an older subscription are ignored.
  function subscribe(room) {
    const gen = ++room.gen;
    const live = (fn) => (data) => { if (room.gen === gen) fn(data); };
    room.presenceAsked = 0;
    room.sub = client.subscribe(room.channel, {
      subscribing: live(({ reason }) => {
        if (reason === 'disconnected') setRoomState(room, 'reconnecting', 'waiting for the connection');
        else setRoomState(room, 'connecting', reason === 'reconnect' ? 'rejoining…' : 'joining…');
      }),
      subscribed: live((ctx) => onSubscribed(room, ctx, gen)),
      publication: live((p) => addPublication(room, p, false)),
      join: live((e) => { note(room, e.userId + ' joined'); refreshMembers(room, gen); }),
      leave: live((e) => { note(room, e.userId + ' left'); refreshMembers(room, gen); }),
      error: live((err) => {
        if (!refusedRoom(room, err.code)) log('error', room.channel + ': ' + err.code + ': ' + err.message, null, 'error');
      }),
      unsubscribed: live(({ reason }) => {
        if (reason === 'client') return;
        if (refusedRoom(room, reason)) {
          setUnavailable('does not let clients join room:* channels');
          log('info', room.channel + ': rooms are unavailable on this server (subscribe: forbidden)', null, 'sys');
        } else if (room.joined) {
          log('left', room.channel, 'ended by the server: ' + reason, reason === 'server' ? 'left' : 'error');
        } // else the join was refused: `error` logged why
        remove(room);
      }),
    });
  }

  // A first `subscribe` of a `room:` channel refused: no public room namespace
  // (a `forbidden` after a join is a refreshed token's doing, an error).
  const refusedRoom = (room, code) => code === 'forbidden' && !room.joined && isRoom(room.channel);

  function makeRoom(channel) {
    const room = {
      channel, sub: null, gen: 0, joined: false, offsets: new Set(), epoch: undefined, unread: 0,
      presence: undefined, presenceAsked: 0,
    };
    room.item = el('li');
    room.item.dataset.channel = channel;
    room.select = el('button', 'room-select', channel);
    room.select.type = 'button';
    room.select.setAttribute('aria-pressed', 'false');
    room.badge = el('span', 'unread');
    room.select.appendChild(room.badge);
    room.pill = el('span', 'pill');
    const leave = el('button', 'leave', 'Leave');
    leave.type = 'button';
    leave.setAttribute('aria-label', 'Leave ' + channel);
    room.item.append(room.select, room.pill, leave);
    room.select.addEventListener('click', () => select(room));
    leave.addEventListener('click', () => leaveRoom(room));

    room.view = el('div', 'room-view');
    room.view.dataset.channel = channel;
    room.view.hidden = true;
    room.membersBox = el('div', 'members-box');
    room.membersBox.hidden = true;
    room.membersCount = el('span', 'count');
    const label = el('span', 'label', 'Members ');
    label.appendChild(room.membersCount);
    room.members = el('ul', 'members');
    room.members.setAttribute('aria-label', 'Members of ' + channel);
    room.membersBox.append(label, room.members);
    room.list = el('ol', 'room-messages');
    room.list.dataset.channel = channel;
    room.list.setAttribute('aria-live', 'polite');
    room.list.setAttribute('aria-label', 'Messages in ' + channel);
    room.view.append(room.membersBox, room.list);
    return room;
  }

  function select(room) {
    selected = room;
    for (const r of rooms.values()) {
      const on = r === room;
      r.view.hidden = !on;
      r.select.setAttribute('aria-pressed', String(on));
      r.item.classList.toggle('selected', on);
    }
    $('room-target').textContent = room ? room.channel : 'no room';
    $('rooms-empty').hidden = rooms.size > 0;
    if (room) {
      room.unread = 0;
      room.badge.textContent = '';
    }
    updateButtons();
  }

  function join() {
    const name = $('room-name').value.trim();
    if (!name) return $('room-name').focus();
    if (!client) return;
    const channel = channelOf(name);
    $('room-name').value = '';
    if (rooms.has(channel)) return select(rooms.get(channel));
    const room = makeRoom(channel);
    rooms.set(channel, room);
    $('room-list').appendChild(room.item);
    $('room-views').appendChild(room.view);
    log('join', channel, null, 'sys');
    subscribe(room);
    select(room);
  }

  function remove(room) {
    room.gen++;
    room.sub = null;
    rooms.delete(room.channel);
    room.item.remove();
    room.view.remove();
    if (selected === room) select(rooms.size ? [...rooms.values()].pop() : null);
    else select(selected);
  }

  function leaveRoom(room) {
    const sub = room.sub;
    const connected = client && client.state === 'connected';
    remove(room);
    if (!sub) return log('left', room.channel, 'was not connected', 'left');
    if (connected) leaving.add(room.channel);
    sub.unsubscribe();
    if (!connected) log('left', room.channel, 'not connected', 'left');
  }

  function publish() {
    const text = $('room-text').value;
    const room = selected;
    if (!text) return $('room-text').focus();
    if (!room || !client) return;
    $('room-text').value = '';
    const status = $('room-status');
    status.dataset.state = 'sending';
    status.textContent = 'publishing…';
    client.publish(room.channel, text).then((ack) => {
      status.dataset.state = 'ok';
      status.textContent = 'published to ' + room.channel + (typeof ack.offset === 'number' ? ' · offset ' + ack.offset : '');
      if (isRoom(room.channel)) setUnavailable(null);
    }, (err) => {
      status.dataset.state = 'error';
      if (err.code === 'forbidden' && isRoom(room.channel)) {
        status.textContent = 'rooms are unavailable (' + room.channel + ': forbidden)';
        setUnavailable('does not let clients publish to room:* channels');
        log('info', room.channel + ': rooms are unavailable on this server (publish: forbidden)', '"' + text + '"', 'sys');
        return;
      }
      status.textContent = err.code + ' (' + room.channel + ')';
      log('error', 'publish to ' + room.channel + ': ' + err.code + ': ' + err.message, '"' + text + '"', 'error');
    });
  }

  function updateButtons() {
    $('join-room').disabled = !alive;
    $('publish').disabled = !alive || !selected;
  }

  // A new client: listen to it, and join the rooms of the previous one again.
  function attach(c) {
    client = c;
    leaving.clear();
    const on = (type, fn) => c.on(type, (data) => { if (c === client) fn(data); });
    // The answer to a Leave (unsubscribe without id) only shows as a raw frame.
    on('frame', (m) => {
      if (m.type === 'unsubscribed' && !m.reason && leaving.delete(m.channel)) log('left', m.channel, 'confirmed by the server', 'left');
    });
    // Channels without a Subscription here: the token's `subs`, the server
    // API, and publications still in flight after a Leave.
    on('publication', (p) => log('publication', show(p.payload), p.channel + ' · from ' + (p.senderId || 'the server') + ' · ' + p.timestamp));
    on('subscribed', (m) => log('joined', m.channel, 'by the server', 'joined'));
    on('unsubscribed', (m) => log('left', m.channel, 'ended by the server: ' + m.reason, 'left'));
    for (const room of rooms.values()) subscribe(room);
  }

  // The client is being replaced or dropped: its subscriptions end with it.
  function detach() {
    client = null;
    leaving.clear();
    for (const room of rooms.values()) {
      room.gen++;
      room.sub = null;
      setRoomState(room, 'idle', 'not connected');
    }
  }

  function setEnabled(on) {
    alive = on;
    updateButtons();
  }

  $('join-form').addEventListener('submit', (ev) => { ev.preventDefault(); join(); });
  $('publish-form').addEventListener('submit', (ev) => { ev.preventDefault(); publish(); });
  select(null);

  return { attach, detach, setEnabled };
}

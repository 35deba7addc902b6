// Sends track, identify, page, screen, group and alias calls to `uniflow dev`
// through Segment's own Node SDK, @segment/analytics-node, unchanged: its
// default fetch client, `host` pointed at uniflow, the default `path`
// (/v1/batch), small batches (`flushAt`), then `await closeAndFlush()`.
//
// Usage: node send_node.mjs --host http://127.0.0.1:PORT --write-key KEY --out DIR
//
// Writes DIR/segment-node.json (what the SDK said it sent, every request as
// the SDK's `http_request` event shows it, the statuses from `http_response`,
// every `error` event and callback error) and DIR/segment-node.ids (the
// messageIds sent, one a line), for check_archive.py. Exits 1 when the SDK
// reported an error or a request was not answered 200.

import { Analytics } from '@segment/analytics-node'
import { randomUUID } from 'node:crypto'
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({
  options: {
    host: { type: 'string' },
    'write-key': { type: 'string' },
    out: { type: 'string' },
  },
})
for (const k of ['host', 'write-key', 'out']) {
  if (!args[k]) {
    console.error(`usage: node send_node.mjs --host URL --write-key KEY --out DIR (missing --${k})`)
    process.exit(2)
  }
}
mkdirSync(args.out, { recursive: true })

const require = createRequire(import.meta.url)
const sdkVersion = require('@segment/analytics-node/package.json').version
console.log(`node SDK: @segment/analytics-node ${sdkVersion} on Node ${process.version}`)

const name = 'segment-node'
const uniq = randomUUID().replaceAll('-', '').slice(0, 10)
const tag = 'segment-node'
const user = `sdk-${tag}-${uniq}`
const anon = `anon-${tag}-${uniq}`
const fill = (v, subs) => {
  if (typeof v === 'string') {
    for (const [k, s] of Object.entries(subs)) v = v.replaceAll(`{${k}}`, s)
    return v
  }
  if (Array.isArray(v)) return v.map((x) => fill(x, subs))
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x, subs)]))
  }
  return v
}
const fx = fill(JSON.parse(readFileSync(new URL('./fixtures.json', import.meta.url), 'utf8')), {
  user,
  uniq,
})

const record = {
  client: name,
  language: 'node',
  expect_gzip: false,
  enqueued: [],
  requests: [],
  errors: [],
}

const analytics = new Analytics({
  writeKey: args['write-key'],
  host: args.host,
  // `path` left to its default, /v1/batch.
  flushAt: 4,
  flushInterval: 500,
  maxRetries: 2,
  httpRequestTimeout: 10000,
})

const pending = new Map() // request body -> request record, until its response
analytics.on('http_request', (req) => {
  const headers = { ...req.headers }
  const auth = headers.Authorization ?? headers.authorization ?? ''
  delete headers.Authorization
  delete headers.authorization
  let basicUser = null
  if (auth.startsWith('Basic ')) {
    basicUser = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':')[0]
  }
  let body
  try {
    body = JSON.parse(req.body)
  } catch (e) {
    body = { _undecodable: String(e) }
  }
  const r = {
    method: req.method,
    path: new URL(req.url).pathname,
    headers,
    auth: basicUser !== null ? 'basic' : auth.split(' ')[0] || null,
    basic_user: basicUser,
    // The SDK hands a JSON string to fetch: never compressed.
    gzip_magic: false,
    bytes: Buffer.byteLength(req.body),
    body,
    status: null,
    answer: null,
  }
  record.requests.push(r)
  pending.set(req.body, r)
})
analytics.on('http_response', (res) => {
  const r = pending.get(res.body)
  if (r) {
    r.status = res.status
    r.answer = { _statusText: res.statusText }
    pending.delete(res.body)
  } else {
    record.errors.push(`http_response without a matching http_request: ${res.status} ${res.url}`)
  }
})
analytics.on('error', (err) => {
  const id = err.ctx?.event?.messageId
  record.errors.push(`error event ${err.code}: ${err.reason}${id ? ` (messageId ${id})` : ''}`)
})

const now = Date.now()
let n = 0
// About half the calls leave the messageId to the SDK (node-next-<ms>-<uuid>).
const mid = () => {
  const i = n++
  return i % 2 === 0 ? `${tag}-${uniq}-${i}` : undefined
}
const done = []
const call = (method, params) =>
  done.push(
    new Promise((resolve) => {
      analytics[method](params, (err, ctx) => {
        if (err) record.errors.push(`${method} callback: ${err}`)
        if (ctx?.event?.messageId) record.enqueued.push(ctx.event.messageId)
        else record.errors.push(`${method} callback without a messageId`)
        resolve()
      })
    }),
  )

call('identify', { userId: user, anonymousId: anon, traits: fx.traits, messageId: mid() })
call('track', { anonymousId: anon, event: 'Product Viewed', properties: fx.product_viewed, messageId: mid() })
call('track', {
  userId: user,
  event: 'Order Completed',
  properties: fx.order_completed,
  // A client clock an hour behind: kept as originalTimestamp, corrected.
  timestamp: new Date(now - 3600_000),
  context: fx.context,
  messageId: mid(),
})
call('track', { userId: user, event: 'Signed In', properties: fx.signed_in, messageId: mid() })
call('track', {
  userId: user,
  event: 'Checkout Step Completed',
  properties: fx.checkout_step,
  messageId: mid(),
})
call('track', {
  userId: user,
  event: 'Signed Out',
  integrations: { All: false, 'Customer.io': true },
  messageId: mid(),
})
call('page', {
  userId: user,
  category: 'Checkout',
  name: 'Order Confirmation',
  properties: fx.page,
  messageId: mid(),
})
call('screen', {
  userId: user,
  category: 'Orders',
  name: 'Order History',
  properties: fx.screen,
  messageId: mid(),
})
call('group', { userId: user, groupId: `acme-corp-${uniq}`, traits: fx.group_traits, messageId: mid() })
call('alias', { previousId: anon, userId: user, messageId: mid() })
// The SDK's defaults: a page and a screen without a name or properties.
call('page', { anonymousId: anon, messageId: mid() })
call('screen', { userId: user, messageId: mid() })

await analytics.closeAndFlush({ timeout: 30000 })
await Promise.all(done)

const ids = []
for (const r of record.requests) {
  for (const m of r.body?.batch ?? []) if (!ids.includes(m.messageId)) ids.push(m.messageId)
}
writeFileSync(`${args.out}/${name}.json`, JSON.stringify(record, null, 1) + '\n')
writeFileSync(`${args.out}/${name}.ids`, ids.map((i) => `${i}\n`).join(''))

const bad = record.requests.filter((r) => r.status !== 200)
console.log(
  `  ${name}: ${record.enqueued.length} calls, ${record.requests.length} requests, ` +
    `${bad.length} not answered 200, ${record.errors.length} SDK errors`,
)
for (const r of bad) console.log(`    ${r.method} ${r.path} -> ${r.status} ${JSON.stringify(r.answer)}`)
for (const e of record.errors) console.log(`    ${e}`)
if (bad.length || record.errors.length) {
  console.log('node SDK: FAILED (an SDK error or a request not answered 200)')
  process.exit(1)
}
console.log('node SDK: every request answered 200, no SDK error')

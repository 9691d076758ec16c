/**
 * The Lua scripts of the Redis engine. Each one touches the keys of ONE user only, all
 * tagged `{<sdkAppId>:<userID>}` so they share a hash slot (Redis Cluster runs a script on
 * one slot), and runs atomically: two logins of one user on two nodes never interleave.
 *
 * Keys of a user (T = `<prefix>{<sdkAppId>:<encoded userID>}`):
 * - `T:i` HASH instId → instance record, JSON `{p, n, o, e, l, t, c, g}`: platform, owning
 *   node, login order (per-user counter), UserSig expiry (ms), login time (ms), SHA-256 of
 *   the resume token, connected (1/0), generation (bumped by every resume).
 * - `T:u` HASH `rb` = revokedBefore (seconds, REST kick), `lo` = last login order.
 * - `T:k` HASH instId → tombstone `{k, x}`: kick type and expiry (ms), so a resume can report
 *   a kick that happened while the instance was detached; pruned on writes, whole-key TTL.
 *
 * Kicks of instances owned by another node are PUBLISHed to that node's channel from inside
 * the script (atomic with the kick); the caller handles its own node's kicks from the reply.
 */

/** Shared helpers, prepended to every script. */
const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local MOBILE = {Android = true, iPhone = true, iPad = true}
local DESKTOP = {Windows = true, Mac = true, Linux = true}
local function conflicts(policy, incoming, existing)
  if incoming == existing or policy == 'multi' then return false end
  if policy == 'single' then return true end
  if policy == 'dual' then return incoming ~= 'Web' and existing ~= 'Web' end
  if policy == 'triple' then
    return (MOBILE[incoming] == true and MOBILE[existing] == true) or (DESKTOP[incoming] == true and DESKTOP[existing] == true)
  end
  return false
end
local function load(ki)
  local all = redis.call('HGETALL', ki)
  local list = {}
  for i = 1, #all, 2 do list[#list + 1] = {id = all[i], rec = cjson.decode(all[i + 1])} end
  table.sort(list, function(a, b) return a.rec.o < b.rec.o end)
  return list
end
local function prune(kk, now)
  local all = redis.call('HGETALL', kk)
  for i = 1, #all, 2 do
    if cjson.decode(all[i + 1]).x <= now then redis.call('HDEL', kk, all[i]) end
  end
end
local function kick(ctx, id, rec, ktype)
  redis.call('HDEL', ctx.ki, id)
  redis.call('HSET', ctx.kk, id, cjson.encode({k = ktype, x = ctx.now + ctx.ttl}))
  redis.call('PEXPIRE', ctx.kk, ctx.ttl)
  if rec.n ~= ctx.me then
    redis.call('PUBLISH', ctx.chan .. rec.n, cjson.encode({t = 'kick', id = id, k = ktype}))
  end
  local out = ctx.out
  out[#out + 1] = id
  out[#out + 1] = rec.n
  out[#out + 1] = ktype
  out[#out + 1] = rec.p
end
`;

/**
 * Login: revocation check, login-policy kicks (multipleDevice), per-platform limit kicking
 * the oldest (multipleAccount), then add. One script per user, so concurrent logins on any
 * nodes are serialized.
 *
 * KEYS: i, u, k. ARGV: instId, platform, node, expireAt, tokenHash, issuedAtSec, policy,
 * maxPerPlatform, tombstoneTtlMs, channelPrefix, deadlineMs (Redis clock; 0: none).
 * Reply: `{'revoked'}` | `{'exists'}` | `{'late'}` (past the deadline: nothing done) |
 * `{'ok', order, loginAtMs, {id, node, type, platform, …}}`.
 */
export const LOGIN = `${PRELUDE}
local ki, ku, kk = KEYS[1], KEYS[2], KEYS[3]
local id, platform, me = ARGV[1], ARGV[2], ARGV[3]
local rb = tonumber(redis.call('HGET', ku, 'rb') or '0')
if tonumber(ARGV[6]) < rb then return {'revoked'} end
if redis.call('HEXISTS', ki, id) == 1 then return {'exists'} end
local now = now_ms()
-- Fence: a login that reaches Redis after its node gave up on it (and answered 9030) must
-- not run: no kick, no instance.
if ARGV[11] and tonumber(ARGV[11]) > 0 and now > tonumber(ARGV[11]) then return {'late'} end
local ctx = {ki = ki, kk = kk, me = me, now = now, ttl = tonumber(ARGV[9]), chan = ARGV[10], out = {}}
prune(kk, now)
local same = {}
for _, it in ipairs(load(ki)) do
  if conflicts(ARGV[7], platform, it.rec.p) then
    kick(ctx, it.id, it.rec, 'multipleDevice')
  elseif it.rec.p == platform then
    same[#same + 1] = it
  end
end
local max = tonumber(ARGV[8])
local j = 1
while #same - j + 1 >= max do
  kick(ctx, same[j].id, same[j].rec, 'multipleAccount')
  j = j + 1
end
local order = redis.call('HINCRBY', ku, 'lo', 1)
redis.call('HSET', ki, id, cjson.encode({p = platform, n = me, o = order, e = tonumber(ARGV[4]), l = now, t = ARGV[5], c = 1, g = 0}))
return {'ok', order, now, ctx.out}
`;

/**
 * Resume on this node: token check, ownership moves here (generation + 1, connected), and
 * the previous owner node is told to forget it. Silent: no kicks, order unchanged.
 *
 * KEYS: i, k. ARGV: instId, tokenHash, node, channelPrefix.
 * Reply: `{'ok', previousNode, recordJson}` | `{'kicked', type}` | `{'gone'}` | `{'bad'}`.
 */
export const RESUME = `${PRELUDE}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  local tomb = redis.call('HGET', KEYS[2], ARGV[1])
  if tomb then
    local t = cjson.decode(tomb)
    if t.x > now_ms() then return {'kicked', t.k} end
  end
  return {'gone'}
end
local rec = cjson.decode(raw)
if rec.t ~= ARGV[2] then return {'bad'} end
local old = rec.n
rec.n = ARGV[3]
rec.c = 1
rec.g = rec.g + 1
local enc = cjson.encode(rec)
redis.call('HSET', KEYS[1], ARGV[1], enc)
if old ~= ARGV[3] then redis.call('PUBLISH', ARGV[4] .. old, cjson.encode({t = 'forget', id = ARGV[1]})) end
return {'ok', old, enc}
`;

/**
 * The connection of an instance dropped: mark it disconnected, if this node still owns this
 * generation of it. KEYS: i. ARGV: instId, node, generation. Reply: 1 | 0.
 */
export const DETACH = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec.n ~= ARGV[2] or rec.g ~= tonumber(ARGV[3]) then return 0 end
rec.c = 0
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(rec))
return 1
`;

/**
 * Release (logout, resume window over, dead node): remove the instance only if `node` owns
 * it (and, when given, still in this generation: a resume elsewhere moved it on).
 * KEYS: i. ARGV: instId, node, generation or ''. Reply: 1 | 0.
 */
export const RELEASE = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local rec = cjson.decode(raw)
if rec.n ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' and rec.g ~= tonumber(ARGV[3]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;

/**
 * UserSig expiry, armed by the owning node: kick with userSigExpired if the instance still
 * exists and its expiry has passed. KEYS: i, k. ARGV: instId, node, tombstoneTtlMs,
 * channelPrefix, nowMs. Reply: kicked list (as in LOGIN).
 */
export const EXPIRE = `${PRELUDE}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {} end
local rec = cjson.decode(raw)
if rec.e > tonumber(ARGV[5]) then return {} end
local ctx = {ki = KEYS[1], kk = KEYS[2], me = ARGV[2], now = now_ms(), ttl = tonumber(ARGV[3]), chan = ARGV[4], out = {}}
kick(ctx, ARGV[1], rec, 'userSigExpired')
return ctx.out
`;

/**
 * REST kick: revoke UserSigs issued before this second (Redis clock, never lowered), then
 * kick every instance of the user. KEYS: i, u, k. ARGV: node, kickType, tombstoneTtlMs,
 * channelPrefix. Reply: kicked list.
 */
export const KICK_USER = `${PRELUDE}
local now = now_ms()
local sec = math.floor(now / 1000)
local rb = tonumber(redis.call('HGET', KEYS[2], 'rb') or '0')
if sec > rb then redis.call('HSET', KEYS[2], 'rb', sec) end
local ctx = {ki = KEYS[1], kk = KEYS[3], me = ARGV[1], now = now, ttl = tonumber(ARGV[3]), chan = ARGV[4], out = {}}
prune(KEYS[3], now)
for _, it in ipairs(load(KEYS[1])) do kick(ctx, it.id, it.rec, ARGV[2]) end
return ctx.out
`;

/**
 * Route a message push: PUBLISH the payload once to every other node that holds a connected
 * instance of the user. KEYS: i. ARGV: node, channelPrefix, payload. Reply: nodes reached.
 */
export const ROUTE = `
local all = redis.call('HGETALL', KEYS[1])
local seen = {}
local n = 0
for i = 2, #all, 2 do
  local rec = cjson.decode(all[i])
  if rec.c == 1 and rec.n ~= ARGV[1] and not seen[rec.n] then
    seen[rec.n] = true
    redis.call('PUBLISH', ARGV[2] .. rec.n, ARGV[3])
    n = n + 1
  end
end
return n
`;

/**
 * Re-register an instance this node holds after Redis lost its data (restart without
 * persistence); never overwrites, never kicks. KEYS: i, u. ARGV: instId, recordJson.
 * Reply: 1 (restored) | 0 (already there).
 */
export const RESTORE = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local rec = cjson.decode(ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local lo = tonumber(redis.call('HGET', KEYS[2], 'lo') or '0')
if rec.o > lo then redis.call('HSET', KEYS[2], 'lo', rec.o) end
return 1
`;

export const SCRIPTS = {
  tcLogin: { numberOfKeys: 3, lua: LOGIN },
  tcResume: { numberOfKeys: 2, lua: RESUME },
  tcDetach: { numberOfKeys: 1, lua: DETACH },
  tcRelease: { numberOfKeys: 1, lua: RELEASE },
  tcExpire: { numberOfKeys: 2, lua: EXPIRE },
  tcKickUser: { numberOfKeys: 3, lua: KICK_USER },
  tcRoute: { numberOfKeys: 1, lua: ROUTE },
  tcRestore: { numberOfKeys: 2, lua: RESTORE },
} as const;

type Arg = string | number;
/** The scripts as ioredis methods (defineCommand). */
export interface ScriptCommands {
  tcLogin(ki: string, ku: string, kk: string, ...args: Arg[]): Promise<unknown[]>;
  tcResume(ki: string, kk: string, ...args: Arg[]): Promise<unknown[]>;
  tcDetach(ki: string, ...args: Arg[]): Promise<number>;
  tcRelease(ki: string, ...args: Arg[]): Promise<number>;
  tcExpire(ki: string, kk: string, ...args: Arg[]): Promise<unknown[]>;
  tcKickUser(ki: string, ku: string, kk: string, ...args: Arg[]): Promise<unknown[]>;
  tcRoute(ki: string, ...args: Arg[]): Promise<number>;
  tcRestore(ki: string, ku: string, ...args: Arg[]): Promise<number>;
}

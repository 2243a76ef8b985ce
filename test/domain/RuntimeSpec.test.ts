/**
 * Image config → runtime `config.json` ([F4]). Every expected document and table row below is
 * what `umoci unpack` (umoci 0.4.7, Debian bookworm, run as root) wrote for an OCI layout built by
 * hand with the same image config and the same /etc/passwd and /etc/group in its one layer; the
 * few places where we follow conversion.md instead are asserted as explicit differences from
 * umoci's document, so any other drift fails here.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as ImageConfig from "../../src/domain/ImageConfig.js"
import * as RuntimeSpec from "../../src/domain/RuntimeSpec.js"

// ---------------------------------------------------------------------------------------------
// The rootfs files of the experiments

type Files = { readonly passwd: string | undefined; readonly group: string | undefined }

const none: Files = { passwd: undefined, group: undefined }

const plain: Files = {
  passwd: "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nbob:x:1001:100::/home/bob:/bin/sh\n",
  group: "root:x:0:\nusers:x:100:alice\nalice:x:1000:\nwheel:x:10:alice,bob\naudio:x:29:bob\n"
}

// Comments, blank and short lines, CRLF, padding, duplicates, a user named like a uid.
const messy: Files = {
  passwd: "#comment:x:0:0::/c:/bin/sh\n\n  root:x:0:0:root:/root:/bin/ash  \nbin:x:1:1:bin:/bin:/sbin/nologin\r\n" +
    "short:x:77\nweird:x:abc:def:w:/w:/bin/sh\ndup:x:500:500::/d1:/bin/sh\ndup:x:501:501::/d2:/bin/sh\n" +
    "1234:x:600:600::/h1234:/bin/sh\nnohome:x:700:700\n",
  group: "# a comment root\nroot:x:0:root\nbin:x:1:root,bin,daemon\nsys:x:3:root,bin,adm\n  adm:x:4:root,adm,daemon  \n" +
    "crlf:x:44:root\r\nshortg:x:55\n 999:x:66:dup\nemptylist:x:77:\nspaced:x:88: root , dup\ndupgrp:x:90:dup\ndupgrp:x:91:dup\n"
}

// Ids outside uint32, negative, signed, zero-padded and with underscores.
const odd: Files = {
  passwd: "root:x:0:0:root:/root:/bin/sh\nbig:x:4294967297:-2::/b:/bin/sh\n" +
    "huge:x:99999999999999999999:-99999999999999999999::/h:/bin/sh\nplus:x:+12:007::/p:/bin/sh\n",
  group: "g1:x:4294967298:big,huge\ng2:x:-1:big\ng3:x:1_000:big\ng4:x:+20:big\n"
}

const linux = (config: Record<string, unknown> = {}, top: Record<string, unknown> = {}): ImageConfig.ImageConfig =>
  Either.getOrThrow(ImageConfig.decode(new TextEncoder().encode(JSON.stringify({ architecture: "amd64", os: "linux", ...top, config }))))

const convert = (image: ImageConfig.ImageConfig, files: Files): Either.Either<RuntimeSpec.RuntimeSpec, string> =>
  Either.flatMap(RuntimeSpec.resolveUser(image.config.User, files), (user) => RuntimeSpec.toRuntimeSpec(image, { user }))

const convertOk = (image: ImageConfig.ImageConfig, files: Files = plain): RuntimeSpec.RuntimeSpec =>
  Either.getOrThrowWith(convert(image, files), (e) => new Error(e))

const leftOf = <A>(result: Either.Either<A, string>): string =>
  Either.match(result, { onLeft: (e) => e, onRight: () => assert.fail("expected a failure") })

// ---------------------------------------------------------------------------------------------
// Whole documents, as umoci wrote them (`jq -c`, so in umoci's key order)

const umociMinimal =
  `{"ociVersion":"1.0.0","process":{"terminal":true,"user":{"uid":0,"gid":0},"args":["sh"],"env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","TERM=xterm"],"cwd":"/","capabilities":{"bounding":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"effective":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"inheritable":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"permitted":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"ambient":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],"noNewPrivileges":true},"root":{"path":"rootfs"},"hostname":"umoci-default","mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},{"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]},{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]},{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}],"annotations":{"org.opencontainers.image.architecture":"amd64","org.opencontainers.image.author":"","org.opencontainers.image.created":"0001-01-01T00:00:00Z","org.opencontainers.image.exposedPorts":"","org.opencontainers.image.os":"linux","org.opencontainers.image.stopSignal":""},"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]},"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}],"maskedPaths":["/proc/kcore","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/sys/firmware","/proc/scsi"],"readonlyPaths":["/proc/asound","/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}}`

const nginxLike = {
  architecture: "amd64",
  os: "linux",
  author: "Jane Doe <jane@example.com>",
  created: "2024-03-05T10:11:12.1234Z",
  config: {
    User: "alice",
    Env: ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_ENV=production"],
    Entrypoint: ["/docker-entrypoint.sh"],
    Cmd: ["nginx", "-g", "daemon off;"],
    WorkingDir: "/srv",
    Labels: { maintainer: "NGINX <nginx@example.com>", "com.example.tier": "web" },
    StopSignal: "SIGQUIT",
    ExposedPorts: { "80/tcp": {}, "443/tcp": {} },
    Volumes: { "/var/cache/nginx": {} }
  },
  history: [{ created: "2024-03-05T10:11:12Z", created_by: "x" }],
  rootfs: { type: "layers", diff_ids: ["sha256:09c0813d311d42c7aab85ebdd3b9bfa122732a445258f11b7cc6aa2a657cf85f"] }
}

const umociNginxLike =
  `{"ociVersion":"1.0.0","process":{"terminal":true,"user":{"uid":1000,"gid":1000,"additionalGids":[100,10]},"args":["/docker-entrypoint.sh","nginx","-g","daemon off;"],"env":["PATH=/usr/local/bin:/usr/bin:/bin","TERM=xterm","APP_ENV=production","HOME=/home/alice"],"cwd":"/srv","capabilities":{"bounding":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"effective":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"inheritable":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"permitted":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"],"ambient":["CAP_AUDIT_WRITE","CAP_KILL","CAP_NET_BIND_SERVICE"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}],"noNewPrivileges":true},"root":{"path":"rootfs"},"hostname":"umoci-default","mounts":[{"destination":"/proc","type":"proc","source":"proc"},{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]},{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620","gid=5"]},{"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]},{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]},{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]},{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]},{"destination":"/var/cache/nginx","type":"tmpfs","source":"none","options":["rw","nosuid","nodev","noexec","relatime"]}],"annotations":{"com.example.tier":"web","maintainer":"NGINX <nginx@example.com>","org.opencontainers.image.architecture":"amd64","org.opencontainers.image.author":"Jane Doe <jane@example.com>","org.opencontainers.image.created":"2024-03-05T10:11:12.1234Z","org.opencontainers.image.exposedPorts":"443/tcp,80/tcp","org.opencontainers.image.os":"linux","org.opencontainers.image.stopSignal":"SIGQUIT"},"linux":{"resources":{"devices":[{"allow":false,"access":"rwm"}]},"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}],"maskedPaths":["/proc/kcore","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/sys/firmware","/proc/scsi"],"readonlyPaths":["/proc/asound","/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]}}`

describe("RuntimeSpec.toRuntimeSpec: whole documents", () => {
  it("[F4] a config with nothing set and no /etc/passwd gives umoci's default document, key for key and in order", () => {
    const spec = convertOk(linux(), none)
    assert.deepStrictEqual(spec, JSON.parse(umociMinimal))
    assert.strictEqual(JSON.stringify(spec), umociMinimal)
  })

  it("[F4] an nginx-like image (user, env, entrypoint+cmd, workdir, labels, stop signal, ports, volume) equals umoci's document", () => {
    const image = Either.getOrThrow(ImageConfig.decode(new TextEncoder().encode(JSON.stringify(nginxLike))))
    const spec = convertOk(image, plain)
    assert.deepStrictEqual(spec, JSON.parse(umociNginxLike))
    // Same key order as Go's structs, so the file differs from umoci's only in Go's \u003c escapes.
    assert.strictEqual(JSON.stringify(spec), umociNginxLike)
  })

  it("[F4] root.path is the rootfs option, \"rootfs\" by default as umoci writes it", () => {
    const user = { uid: 0, gid: 0, additionalGids: [] }
    assert.strictEqual(Either.getOrThrow(RuntimeSpec.toRuntimeSpec(linux(), { user })).root.path, "rootfs")
    assert.strictEqual(Either.getOrThrow(RuntimeSpec.toRuntimeSpec(linux(), { user, rootfs: "/abs/rootfs" })).root.path, "/abs/rootfs")
  })

  it("[F4] each call returns fresh arrays: mutating one bundle's spec cannot leak into the next", () => {
    const user = { uid: 0, gid: 0, additionalGids: [] }
    const a = Either.getOrThrow(RuntimeSpec.toRuntimeSpec(linux(), { user }))
    ;(a.mounts as Array<RuntimeSpec.Mount>).push({ destination: "/x", type: "bind", source: "/x" })
    ;(a.process.env as Array<string>).push("X=1")
    ;(a.linux.namespaces as Array<{ type: string }>).pop()
    assert.deepStrictEqual(Either.getOrThrow(RuntimeSpec.toRuntimeSpec(linux(), { user })), JSON.parse(umociMinimal))
  })
})

// ---------------------------------------------------------------------------------------------
// Config.User

// [name, files, Config.User, process.user as umoci wrote it, HOME umoci added]
const umociUsers: ReadonlyArray<readonly [string, Files, string | undefined, RuntimeSpec.Process["user"], string | undefined]> = [
  ["no user, passwd has root", plain, undefined, { uid: 0, gid: 0 }, "/root"],
  ["no user, no passwd", none, undefined, { uid: 0, gid: 0 }, undefined],
  ["name", plain, "alice", { uid: 1000, gid: 1000, additionalGids: [100, 10] }, "/home/alice"],
  ["uid with a passwd entry: its gid, home and groups", plain, "1000", { uid: 1000, gid: 1000, additionalGids: [100, 10] }, "/home/alice"],
  ["uid:gid with a passwd entry", plain, "1000:5", { uid: 1000, gid: 5 }, "/home/alice"],
  ["name:group", plain, "alice:wheel", { uid: 1000, gid: 10 }, "/home/alice"],
  ["supplementary groups in file order", plain, "bob", { uid: 1001, gid: 100, additionalGids: [10, 29] }, "/home/bob"],
  ["uid without an entry", plain, "4242", { uid: 4242, gid: 0 }, undefined],
  ["uid:gid without entries", plain, "4242:4343", { uid: 4242, gid: 4343 }, undefined],
  ["uid:gid, no files at all", none, "123:456", { uid: 123, gid: 456 }, undefined],
  ["name:gid", plain, "bob:1000", { uid: 1001, gid: 1000 }, "/home/bob"],
  [":group is root with that group", plain, ":wheel", { uid: 0, gid: 10 }, "/root"],
  ["user: (empty group) counts as no group", plain, "alice:", { uid: 1000, gid: 1000, additionalGids: [100, 10] }, "/home/alice"],
  ["+1000 is numeric", plain, "+1000", { uid: 1000, gid: 1000, additionalGids: [100, 10] }, "/home/alice"],
  ["a third field is ignored", plain, "alice:wheel:extra", { uid: 1000, gid: 10 }, "/home/alice"],
  ["the largest ids", plain, "2147483647:2147483647", { uid: 2147483647, gid: 2147483647 }, undefined],
  ["0:10 without files", none, "0:10", { uid: 0, gid: 10 }, undefined],
  ["no user takes the first uid-0 line, a comment here", messy, undefined, { uid: 0, gid: 0 }, "/c"],
  ["root's groups: comments skipped, lines trimmed, CRLF", messy, "root", { uid: 0, gid: 0, additionalGids: [0, 1, 3, 4, 44] }, "/root"],
  ["uid 0 also matches the comment line first", messy, "0", { uid: 0, gid: 0 }, "/c"],
  ["a CRLF passwd line", messy, "bin", { uid: 1, gid: 1, additionalGids: [1, 3] }, "/bin"],
  ["a short passwd line", messy, "short", { uid: 77, gid: 0 }, undefined],
  ["ids that are not numbers read as 0", messy, "weird", { uid: 0, gid: 0 }, "/w"],
  ["the first of duplicate names; a padded group name matches, padded members do not", messy, "dup", { uid: 500, gid: 500, additionalGids: [66, 90, 91] }, "/d1"],
  ["a numeric user is a uid, never the user named like it", messy, "1234", { uid: 1234, gid: 0 }, undefined],
  ["the user named 1234 is found by its uid", messy, "600", { uid: 600, gid: 600 }, "/h1234"],
  ["no home field, no HOME", messy, "nohome", { uid: 700, gid: 700 }, undefined],
  ["a numeric group is a gid, never the group named like it", messy, "dup:999", { uid: 500, gid: 999 }, "/d1"],
  ["the first of duplicate group names", messy, "dup:dupgrp", { uid: 500, gid: 90 }, "/d1"],
  ["a # user name matches the comment line", messy, "#comment", { uid: 0, gid: 0 }, "/c"],
  ["a CRLF group line", messy, "dup:crlf", { uid: 500, gid: 44 }, "/d1"],
  ["a padded group line", messy, "dup:adm", { uid: 500, gid: 4 }, "/d1"],
  ["ids truncated to uint32, as umoci stores them", odd, "big", { uid: 1, gid: 4294967294, additionalGids: [2, 4294967295, 0, 20] }, "/b"],
  ["an id beyond int64 is clamped, then truncated", odd, "huge", { uid: 4294967295, gid: 0, additionalGids: [2] }, "/h"],
  ["a uid above 2^31 is fine when passwd has it", odd, "4294967297", { uid: 1, gid: 4294967294, additionalGids: [2, 4294967295, 0, 20] }, "/b"],
  ["signed and zero-padded ids in passwd", odd, "plus", { uid: 12, gid: 7 }, "/p"],
  ["a signed gid in group", odd, "12:20", { uid: 12, gid: 20 }, "/p"],
  ["a negative gid is fine when group has it", odd, "12:-1", { uid: 12, gid: 4294967295 }, "/p"],
  ["a group whose gid is not a number has gid 0", odd, "12:g3", { uid: 12, gid: 0 }, "/p"]
]

// [Config.User, files, the reason umoci gave]
const umociUserErrors: ReadonlyArray<readonly [string, Files, string]> = [
  ["nobody", plain, "unable to find user nobody: no matching entries in passwd file"],
  ["alice:nogroup", plain, "unable to find group nogroup: no matching entries in group file"],
  ["alice", none, "unable to find user alice: no matching entries in passwd file"],
  ["0:wheel", none, "unable to find group wheel: no matching entries in group file"],
  ["-1", plain, "uids and gids must be in range 0-2147483647"],
  ["2147483648", plain, "uids and gids must be in range 0-2147483647"],
  ["12:-5", odd, "uids and gids must be in range 0-2147483647"],
  ["12:2147483648", odd, "uids and gids must be in range 0-2147483647"],
  ["99999999999999999999", odd, "unable to find user 99999999999999999999: no matching entries in passwd file"],
  ["0x10", odd, "unable to find user 0x10: no matching entries in passwd file"],
  ["1_000", odd, "unable to find user 1_000: no matching entries in passwd file"],
  ["dup: 999", messy, "unable to find group  999: no matching entries in group file"],
  ["dup:# a comment root", messy, "unable to find group # a comment root: no matching entries in group file"]
]

describe("RuntimeSpec.resolveUser", () => {
  it("[F4] every form of Config.User resolves as umoci resolved it, HOME included", () => {
    for (const [name, files, user, expected, home] of umociUsers) {
      const spec = convertOk(linux(user === undefined ? {} : { User: user }), files)
      assert.deepStrictEqual(spec.process.user, expected, name)
      assert.strictEqual(spec.process.env.find((e) => e.startsWith("HOME=")), home === undefined ? undefined : `HOME=${home}`, name)
      const resolved = Either.getOrThrow(RuntimeSpec.resolveUser(user, files))
      assert.deepStrictEqual(resolved.additionalGids, expected.additionalGids ?? [], name)
      assert.strictEqual(resolved.home, home, name)
    }
  })

  it("[F4] a user or group that is not in the files, or an id out of range, is an error with umoci's reason", () => {
    for (const [user, files, reason] of umociUserErrors) {
      const why = leftOf(RuntimeSpec.resolveUser(user, files))
      assert.strictEqual(why, `cannot resolve user "${user}": ${reason}`, user)
    }
  })

  it("[F4] a passwd line of 64 KiB fails every lookup, as runc's line scanner does; 64 KiB - 1 is fine", () => {
    const withLine = (bytes: number) => `root:x:0:0:root:/root:/bin/sh\nlong:x:5:5:${"g".repeat(bytes - 11)}\n`
    assert.isTrue(Either.isRight(RuntimeSpec.resolveUser("root", { passwd: withLine(65535), group: undefined })))
    for (const [user, shown] of [["root", "root"], ["5", "5"], [undefined, "0"]] as const) {
      const why = leftOf(RuntimeSpec.resolveUser(user, { passwd: withLine(65536), group: undefined }))
      assert.include(why, `unable to find user ${shown}: bufio.Scanner: token too long`)
    }
  })

  const passwdLine = FastCheck.tuple(
    FastCheck.stringMatching(/^[a-z#][a-z0-9]{0,5}$/),
    FastCheck.oneof(FastCheck.nat(5000).map(String), FastCheck.constantFrom("", "x", "-1", "4294967297")),
    FastCheck.oneof(FastCheck.nat(5000).map(String), FastCheck.constantFrom("", "y"))
  ).map(([name, uid, gid]) => `${name}:x:${uid}:${gid}::/home/${name}:/bin/sh`)
  const groupLine = FastCheck.tuple(
    FastCheck.stringMatching(/^[a-z#][a-z0-9]{0,5}$/),
    FastCheck.oneof(FastCheck.nat(5000).map(String), FastCheck.constant("z")),
    FastCheck.array(FastCheck.stringMatching(/^[a-z]{1,4}$/), { maxLength: 3 })
  ).map(([name, gid, members]) => `${name}:x:${gid}:${members.join(",")}`)
  const text = (line: FastCheck.Arbitrary<string>) =>
    FastCheck.option(FastCheck.array(line, { maxLength: 8 }).map((ls) => ls.join("\n")), { nil: undefined })

  it.prop(
    "[F4] a numeric uid:gid in range resolves to exactly those numbers and no additional gids, whatever the files hold",
    {
      uid: FastCheck.oneof(FastCheck.nat(5000), FastCheck.nat(2147483647)),
      gid: FastCheck.oneof(FastCheck.nat(5000), FastCheck.nat(2147483647)),
      passwd: text(passwdLine),
      group: text(groupLine)
    },
    ({ gid, group, passwd, uid }) => {
      const resolved = Either.getOrThrow(RuntimeSpec.resolveUser(`${uid}:${gid}`, { passwd, group }))
      assert.strictEqual(resolved.uid, uid)
      assert.strictEqual(resolved.gid, gid)
      assert.deepStrictEqual(resolved.additionalGids, [])
    }
  )

  it.prop(
    "[F4] a user found by name gets exactly the gids of the groups that list it",
    { passwd: text(passwdLine), group: text(groupLine), pick: FastCheck.nat() },
    ({ group, passwd, pick }) => {
      const users = Either.getOrThrow(RuntimeSpec.parsePasswd(passwd ?? ""))
      const named = users.filter((u) => !/^[+-]?\d+$/.test(u.name))
      if (named.length === 0) return
      const name = named[pick % named.length]!.name
      const resolved = Either.getOrThrow(RuntimeSpec.resolveUser(name, { passwd, group }))
      const expected = RuntimeSpec.parseGroup(group ?? "").filter((g) => g.members.includes(name)).map((g) => Number(BigInt.asUintN(32, g.gid)))
      assert.deepStrictEqual(resolved.additionalGids, expected)
    }
  )
})

describe("RuntimeSpec.parsePasswd / parseGroup", () => {
  it("[F4] passwd: blank lines skipped, lines trimmed, comments kept as entries (runc does not skip them)", () => {
    const entries = Either.getOrThrow(RuntimeSpec.parsePasswd("# just a comment\n\n \t \n  alice:x:1000:1000:Alice:/home/alice:/bin/sh  \r\n"))
    assert.deepStrictEqual(entries, [
      { name: "# just a comment", password: "", uid: 0n, gid: 0n, gecos: "", home: "", shell: "" },
      { name: "alice", password: "x", uid: 1000n, gid: 1000n, gecos: "Alice", home: "/home/alice", shell: "/bin/sh" }
    ])
  })

  it("[F4] passwd: short lines leave fields empty, bad numbers read 0, huge ones clamp to int64, extra fields are ignored", () => {
    const entries = Either.getOrThrow(RuntimeSpec.parsePasswd("a\nb:x:12\nc:x:1e3:0x1f\nd:x:99999999999999999999:-99999999999999999999\ne:x:1:2:g:/h:/s:extra:more"))
    assert.deepStrictEqual(entries.map((e) => [e.name, e.uid, e.gid, e.home, e.shell]), [
      ["a", 0n, 0n, "", ""],
      ["b", 12n, 0n, "", ""],
      ["c", 0n, 0n, "", ""],
      ["d", 9223372036854775807n, -9223372036854775808n, "", ""],
      ["e", 1n, 2n, "/h", "/s"]
    ])
  })

  it("[F4] trimming is Go's: U+0085 and NBSP are space, a BOM is not", () => {
    const entries = Either.getOrThrow(RuntimeSpec.parsePasswd("\u0085\u00a0root:x:0:0::/r:/bin/sh\u00a0\n\ufeffbom:x:1:1::/b:/bin/sh"))
    assert.deepStrictEqual(entries.map((e) => [e.name, e.shell]), [["root", "/bin/sh"], ["\ufeffbom", "/bin/sh"]])
  })

  it("[F4] group: comments and blank lines skipped, members split on commas and not trimmed", () => {
    const groups = RuntimeSpec.parseGroup("# wheel:x:10:alice\n\nwheel:x:10:alice, bob ,carol\r\nempty:x:11:\nshort:x:12\nnogid\n  padded:x:13:dave  ")
    assert.deepStrictEqual(groups, [
      { name: "wheel", password: "x", gid: 10n, members: ["alice", " bob ", "carol"] },
      { name: "empty", password: "x", gid: 11n, members: [] },
      { name: "short", password: "x", gid: 12n, members: [] },
      { name: "nogid", password: "", gid: 0n, members: [] },
      { name: "padded", password: "x", gid: 13n, members: ["dave"] }
    ])
  })
})

// ---------------------------------------------------------------------------------------------
// Verbatim and annotation fields

describe("RuntimeSpec.toRuntimeSpec: fields", () => {
  it("[F4] args are Entrypoint followed by Cmd; neither gives umoci's default sh", () => {
    // [Entrypoint, Cmd, args umoci wrote]
    const table: ReadonlyArray<readonly [unknown, unknown, ReadonlyArray<string>]> = [
      [["/bin/ep", "x"], undefined, ["/bin/ep", "x"]],
      [undefined, ["/bin/cmd", "y"], ["/bin/cmd", "y"]],
      [["/bin/ep", "x"], ["y", "z"], ["/bin/ep", "x", "y", "z"]],
      [[], [], ["sh"]],
      [null, null, ["sh"]],
      [[""], ["", "a"], ["", "", "a"]],
      [[], ["only"], ["only"]]
    ]
    for (const [Entrypoint, Cmd, args] of table) {
      assert.deepStrictEqual(convertOk(linux({ Entrypoint, Cmd })).process.args, args, JSON.stringify([Entrypoint, Cmd]))
    }
  })

  it("[F4] Env replaces umoci's defaults in place, a repeated name keeps its first place with its last value", () => {
    // [Env, env umoci wrote (root's passwd adds HOME=/root)]
    const table: ReadonlyArray<readonly [ReadonlyArray<string>, ReadonlyArray<string>]> = [
      [
        ["PATH=/x:/y", "FOO=bar", "EMPTY=", "EQ=a=b", "FOO=baz", "TERM=dumb"],
        ["PATH=/x:/y", "TERM=dumb", "FOO=baz", "EMPTY=", "EQ=a=b", "HOME=/root"]
      ],
      [["P=1", "PATH=2", "PA=3"], ["PATH=2", "TERM=xterm", "P=1", "PA=3", "HOME=/root"]]
    ]
    for (const [Env, env] of table) assert.deepStrictEqual(convertOk(linux({ Env })).process.env, env)
    // Without passwd there is no HOME to add, and the image's own stays.
    assert.deepStrictEqual(convertOk(linux({ Env: ["HOME=/x"] }), none).process.env, [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "TERM=xterm",
      "HOME=/x"
    ])
  })

  it("[F4] WorkingDir is copied verbatim, even relative; none gives /", () => {
    assert.strictEqual(convertOk(linux({ WorkingDir: "/srv/app" })).process.cwd, "/srv/app")
    assert.strictEqual(convertOk(linux({ WorkingDir: "relative/dir" })).process.cwd, "relative/dir")
    assert.strictEqual(convertOk(linux({ WorkingDir: "" })).process.cwd, "/")
  })

  it("[F4] created is written as Go's RFC3339Nano, as umoci writes it", () => {
    // [created in the config, the annotation umoci wrote]
    const table: ReadonlyArray<readonly [string | null, string]> = [
      ["2024-03-05T10:11:12.120000Z", "2024-03-05T10:11:12.12Z"],
      ["2024-03-05T10:11:12+02:00", "2024-03-05T10:11:12+02:00"],
      ["2024-03-05T10:11:12.5+00:00", "2024-03-05T10:11:12.5Z"],
      ["2024-03-05T10:11:12.000Z", "2024-03-05T10:11:12Z"],
      [null, "0001-01-01T00:00:00Z"],
      ["2024-03-05T10:11:12.1234567891234Z", "2024-03-05T10:11:12.123456789Z"],
      ["2024-03-05T10:11:12.999999999999Z", "2024-03-05T10:11:12.999999999Z"],
      ["2024-03-05T10:11:12-00:00", "2024-03-05T10:11:12Z"],
      ["2024-03-05T10:11:12,5Z", "2024-03-05T10:11:12.5Z"],
      ["2024-03-05T10:11:12+05:30", "2024-03-05T10:11:12+05:30"],
      ["2024-03-05T10:11:12+01:60", "2024-03-05T10:11:12+02:00"],
      ["2024-03-05T1:11:12Z", "2024-03-05T01:11:12Z"],
      ["2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"],
      ["2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"],
      ["0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"]
    ]
    for (const [created, expected] of table) {
      assert.strictEqual(convertOk(linux({}, { created })).annotations[RuntimeSpec.Annotation.created], expected, String(created))
    }
  })

  it("[F4] a created that umoci's Go refuses is refused", () => {
    const refused = [
      "not-a-date", "2024-03-05t10:11:12z", "2024-02-30T10:11:12Z", "2024-03-05T24:00:00Z", "", "2023-02-29T00:00:00Z",
      "2100-02-29T00:00:00Z", "2024-03-05T10:11:60Z", "2024-03-05T10:11:12.Z", "2024-03-05T10:11:12+0200",
      "2024-13-05T10:11:12Z", "2024-03-05T10:11:12 Z"
    ]
    for (const created of refused) {
      assert.include(leftOf(convert(linux({}, { created }), plain)), `invalid created "${created}"`, created)
    }
    // umoci refused {"history":[{"created":"bad"}]} too, and took a one-digit hour there.
    assert.include(leftOf(convert(linux({}, { history: [{ created: "bad" }] }), plain)), `invalid history created "bad"`)
    assert.isTrue(Either.isRight(convert(linux({}, { history: [{ created: "2024-03-05T1:11:12Z", created_by: null }] }), plain)))
  })

  it("[F4] annotations: implicit ones as umoci writes them (empty author, stop signal and ports included), labels copied, keys sorted by code point", () => {
    const spec = convertOk(linux({ Labels: { b: "<&>", "a\u00e9": "x", "a\ud83d\ude00": "y", "a\uffff": "z" } }), none)
    const umoci = {
      "a\u00e9": "x",
      "a\uffff": "z",
      "a\ud83d\ude00": "y",
      b: "<&>",
      "org.opencontainers.image.architecture": "amd64",
      "org.opencontainers.image.author": "",
      "org.opencontainers.image.created": "0001-01-01T00:00:00Z",
      "org.opencontainers.image.exposedPorts": "",
      "org.opencontainers.image.os": "linux",
      "org.opencontainers.image.stopSignal": ""
    }
    assert.deepStrictEqual(spec.annotations, umoci)
    assert.deepStrictEqual(Object.keys(spec.annotations), Object.keys(umoci))
  })

  it("[F4] ExposedPorts are sorted and comma-joined; Volumes become tmpfs mounts after the defaults, also with null values", () => {
    const spec = convertOk(linux({ ExposedPorts: { "80/tcp": null }, Volumes: { "/v": null } }), none)
    assert.strictEqual(spec.annotations[RuntimeSpec.Annotation.exposedPorts], "80/tcp")
    assert.deepStrictEqual(spec.mounts.slice(7), [{ destination: "/v", type: "tmpfs", source: "none", options: ["rw", "nosuid", "nodev", "noexec", "relatime"] }])
    const many = convertOk(linux({ ExposedPorts: { "8080/tcp": {}, "53/udp": {}, "443/tcp": {}, "10000": {} } }), none)
    assert.strictEqual(many.annotations[RuntimeSpec.Annotation.exposedPorts], "10000,443/tcp,53/udp,8080/tcp")
  })

  it("[F4] an OS other than linux, or an Env entry umoci cannot split, is refused with umoci's reason", () => {
    assert.include(leftOf(convert(linux({}, { os: "windows" }), none)), `unsupported OS: "windows"`)
    assert.include(leftOf(convert(linux({}, { os: "Linux" }), none)), `unsupported OS: "Linux"`)
    assert.include(leftOf(convert(linux({}, { os: null }), none)), `unsupported OS: ""`)
    assert.include(leftOf(convert(linux({ Env: ["NOEQUALS"] }), none)), "environment variable must contain '='")
    assert.include(leftOf(convert(linux({ Env: [null] }), none)), "environment variable must contain '='")
    assert.include(leftOf(convert(linux({ Env: ["=value"] }), none)), "environment variable must have non-empty name")
  })

  it.prop(
    "[F4] args are always Entrypoint ++ Cmd, and sh only when both are empty",
    { entrypoint: FastCheck.option(FastCheck.array(FastCheck.string(), { maxLength: 3 }), { nil: null }), cmd: FastCheck.option(FastCheck.array(FastCheck.string(), { maxLength: 3 }), { nil: null }) },
    ({ cmd, entrypoint }) => {
      const both = [...(entrypoint ?? []), ...(cmd ?? [])]
      assert.deepStrictEqual(convertOk(linux({ Entrypoint: entrypoint, Cmd: cmd }), none).process.args, both.length > 0 ? both : ["sh"])
    }
  )

  it.prop(
    "[F4] every Env name appears once, with its last value, and PATH and TERM always do",
    { env: FastCheck.array(FastCheck.tuple(FastCheck.constantFrom("PATH", "TERM", "HOME", "A", "AB", "B"), FastCheck.string()), { maxLength: 8 }) },
    ({ env }) => {
      const out = convertOk(linux({ Env: env.map(([k, v]) => `${k}=${v}`) }), none).process.env
      const names = out.map((e) => e.slice(0, e.indexOf("=")))
      assert.strictEqual(new Set(names).size, names.length)
      assert.includeMembers(names, ["PATH", "TERM"])
      for (const [k] of env) assert.include(out, `${k}=${env.filter(([n]) => n === k).at(-1)![1]}`)
    }
  )

  it.prop(
    "[F4] every label reaches the annotations unchanged (conversion.md: labels take precedence) and the implicit keys are always there",
    {
      labels: FastCheck.dictionary(
        FastCheck.oneof(FastCheck.constantFrom(...Object.values(RuntimeSpec.Annotation)), FastCheck.stringMatching(/^[a-z.]{1,8}$/)),
        FastCheck.string()
      )
    },
    ({ labels }) => {
      const annotations = convertOk(linux({ Labels: labels }, { variant: "v2", "os.version": "1", "os.features": ["f"] }), none).annotations
      for (const [k, v] of Object.entries(labels)) assert.strictEqual(annotations[k], v)
      assert.includeMembers(Object.keys(annotations), Object.values(RuntimeSpec.Annotation))
    }
  )
})

// ---------------------------------------------------------------------------------------------
// Where conversion.md wins over umoci 0.4.7

describe("RuntimeSpec.toRuntimeSpec: conversion.md over umoci 0.4.7", () => {
  it("[F4] labels win over implicit annotations, and variant, os.version and os.features are written", () => {
    const image = linux(
      {
        Labels: {
          maintainer: "me",
          "org.opencontainers.image.os": "label-os",
          "org.opencontainers.image.created": "label-created",
          "org.opencontainers.image.exposedPorts": "label-ports",
          "org.opencontainers.image.variant": "label-variant"
        },
        StopSignal: "SIGQUIT",
        ExposedPorts: { "8080/tcp": {}, "53/udp": {}, "443/tcp": {}, "10000": {} },
        Volumes: { "/data": {}, "/var/log": {}, "/a": {} }
      },
      { architecture: "arm64", variant: "v8", "os.version": "5.1", "os.features": ["a", "b"], author: "Jane <j@x>", created: "2024-03-05T10:11:12.123456789Z" }
    )
    const umoci = {
      maintainer: "me",
      "org.opencontainers.image.architecture": "arm64",
      "org.opencontainers.image.author": "Jane <j@x>",
      "org.opencontainers.image.created": "2024-03-05T10:11:12.123456789Z",
      "org.opencontainers.image.exposedPorts": "10000,443/tcp,53/udp,8080/tcp",
      "org.opencontainers.image.os": "linux",
      "org.opencontainers.image.stopSignal": "SIGQUIT",
      "org.opencontainers.image.variant": "label-variant"
    }
    const spec = convertOk(image)
    assert.deepStrictEqual(spec.annotations, {
      ...umoci,
      // umoci 0.4.7 overwrote these three labels with its implicit values.
      "org.opencontainers.image.os": "label-os",
      "org.opencontainers.image.created": "label-created",
      "org.opencontainers.image.exposedPorts": "label-ports",
      // umoci 0.4.7 does not know these fields.
      "org.opencontainers.image.os.version": "5.1",
      "org.opencontainers.image.os.features": "a,b"
    })
    // umoci wrote the same three volumes in Go's random map order; ours are sorted.
    assert.deepStrictEqual(spec.mounts.slice(7).map((m) => m.destination), ["/a", "/data", "/var/log"])
  })

  it("[F4] the variant annotation is written when the config has one", () => {
    const spec = convertOk(linux({ Labels: { a: "1", b: "", "org.opencontainers.image.title": "t" }, ExposedPorts: { "80/tcp": {} } }, { architecture: "arm", variant: "v7" }))
    const umoci = {
      a: "1",
      b: "",
      "org.opencontainers.image.architecture": "arm",
      "org.opencontainers.image.author": "",
      "org.opencontainers.image.created": "0001-01-01T00:00:00Z",
      "org.opencontainers.image.exposedPorts": "80/tcp",
      "org.opencontainers.image.os": "linux",
      "org.opencontainers.image.stopSignal": "",
      "org.opencontainers.image.title": "t"
    }
    assert.deepStrictEqual(spec.annotations, { ...umoci, "org.opencontainers.image.variant": "v7" })
  })

  it("[F4] the image's own HOME is kept; umoci 0.4.7 replaced it with the passwd home", () => {
    const umoci = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/home/alice", "A=1"]
    const spec = convertOk(linux({ User: "alice", Env: ["HOME=/custom", "A=1"] }))
    assert.deepStrictEqual(spec.process.env, umoci.map((e) => e === "HOME=/home/alice" ? "HOME=/custom" : e))
  })
})

// ---------------------------------------------------------------------------------------------
// ImageConfig

describe("ImageConfig.decode", () => {
  const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

  it("[F4] Docker's nulls read as absent and unknown fields are ignored", () => {
    const config = Either.getOrThrow(ImageConfig.decode(encode({
      architecture: "amd64",
      os: "linux",
      author: null,
      container: "abc",
      docker_version: "24.0.7",
      config: {
        Hostname: "",
        User: "",
        Env: null,
        Cmd: null,
        Entrypoint: null,
        Volumes: null,
        ExposedPorts: null,
        Labels: null,
        OnBuild: null,
        Image: "sha256:abc"
      },
      rootfs: { type: "layers", diff_ids: null },
      history: [{ created: "2024-01-01T00:00:00Z", created_by: "/bin/sh", empty_layer: true }]
    })))
    assert.deepStrictEqual(config, {
      architecture: "amd64",
      os: "linux",
      config: { User: "" },
      rootfs: { type: "layers", diff_ids: [] },
      history: [{ created: "2024-01-01T00:00:00Z", created_by: "/bin/sh", empty_layer: true }]
    })
  })

  it("[F4] missing os, architecture and config read as Go's zero values, as umoci reads them", () => {
    assert.deepStrictEqual(Either.getOrThrow(ImageConfig.decode(encode({}))), { architecture: "", os: "", config: {} })
    assert.deepStrictEqual(Either.getOrThrow(ImageConfig.decode(encode({ os: "linux", config: null }))), { architecture: "", os: "linux", config: {} })
  })

  it("[F4] null list elements and label values read as \"\", as Go reads them", () => {
    const config = Either.getOrThrow(ImageConfig.decode(encode({ os: "linux", config: { Cmd: ["a", null], Labels: { x: null } } })))
    assert.deepStrictEqual(config.config, { Cmd: ["a", ""], Labels: { x: "" } })
  })

  it("[F4] a value of the wrong type is refused with one line saying where", () => {
    const table: ReadonlyArray<readonly [unknown, string]> = [
      [{ os: "linux", config: { Env: ["A=1", 5] } }, "config.Env[1]"],
      [{ os: "linux", config: { Cmd: "echo hi" } }, "config.Cmd"],
      [{ os: 5 }, "os"],
      [{ os: "linux", config: { Labels: { a: 1 } } }, "config.Labels.a"],
      [{ os: "linux", rootfs: { diff_ids: "x" } }, "rootfs.diff_ids"]
    ]
    for (const [value, where] of table) {
      const why = leftOf(ImageConfig.decode(encode(value)))
      assert.include(why, `invalid image config: ${where}: `, JSON.stringify(value))
      assert.notInclude(why, "\n")
    }
    assert.strictEqual(leftOf(ImageConfig.decode(new TextEncoder().encode("{"))), "the image config is not JSON")
    assert.strictEqual(leftOf(ImageConfig.decode(encode([1]))), "the image config is not a JSON object")
  })

  it.prop(
    "[F4] canonicalCreated keeps the instant, is idempotent, and writes Go's RFC3339Nano form",
    { date: FastCheck.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59.999Z"), noInvalidDate: true }) },
    ({ date }) => {
      const canonical = Option.getOrThrow(ImageConfig.canonicalCreated(date.toISOString()))
      assert.strictEqual(Date.parse(canonical), date.getTime())
      assert.deepStrictEqual(ImageConfig.canonicalCreated(canonical), Option.some(canonical))
      assert.match(canonical, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z$/)
    }
  )
})

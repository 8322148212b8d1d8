// Fills Node's compile cache at image build time (run as root in the final stage), for the user the
// container runs as. Node keeps one cache directory per uid and writes its files 0600, so the cache
// is written by a child running as that uid; then everything is handed to root and made read-only
// for all, so nothing in the image is writable by the runtime user and the runtime user can read it.
//
//   node fill-compile-cache.mjs DIR UID:GID [NODE_FLAGS...] ENTRY [ARGS...]
//
// NODE_FLAGS: the ones the image runs node with. V8 keeps its flags in each cached module's key
// (--heap-growing-percent among them; heap sizes are not), so a cache filled without them is
// rejected at run time.
// The directory is an argument, not NODE_COMPILE_CACHE: this root process must not add a cache of its
// own (for uid 0) beside it.
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const [dir, owner = "", ...argv] = process.argv.slice(2);
const [uid, gid] = owner.split(":").map(Number);
const entry = argv.find((arg) => !arg.startsWith("-"));
if (!dir || !entry || !Number.isInteger(uid) || !Number.isInteger(gid)) {
  process.stderr.write("usage: node fill-compile-cache.mjs DIR UID:GID [NODE_FLAGS...] ENTRY [ARGS...]\n");
  process.exit(2);
}
mkdirSync(dir, { recursive: true });
chownSync(dir, uid, gid);
execFileSync(process.execPath, argv, {
  uid,
  gid,
  env: { ...process.env, NODE_COMPILE_CACHE: dir },
  stdio: ["ignore", "ignore", "inherit"],
});
const paths = [dir, ...readdirSync(dir, { recursive: true }).map((name) => join(dir, String(name)))];
let files = 0;
for (const path of paths) {
  chownSync(path, 0, 0);
  const isDir = statSync(path).isDirectory();
  chmodSync(path, isDir ? 0o555 : 0o444);
  if (!isDir) files++;
}
if (files === 0) {
  process.stderr.write(`fill-compile-cache: ${entry} wrote nothing to ${dir}\n`);
  process.exit(1);
}
process.stdout.write(`fill-compile-cache: ${files} entries for uid ${uid} in ${dir}\n`);

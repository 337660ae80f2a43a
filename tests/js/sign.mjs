// Reference signer for crtask tests: reads JSON lines {"secret": S, "body": B}
// on stdin and prints `sign(S, B)` from @octokit/webhooks-methods (the
// X-Hub-Signature-256 value GitHub would send), one line per input line.
import { createInterface } from "node:readline";
import { sign } from "@octokit/webhooks-methods";

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (line.trim() === "") continue;
  const { secret, body } = JSON.parse(line);
  process.stdout.write((await sign(secret, body)) + "\n");
}

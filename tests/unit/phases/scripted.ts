/**
 * A target whose commands are answered by a script, over an in-process SSH peer: each command is
 * matched against rules in order, its stdin read to the end, and the first matching rule's reply
 * sent. Unmatched commands exit 0 with no output. For unit tests of a phase's failure paths.
 */
import type { ServerChannel } from "ssh2";
import type { PhaseContext } from "../../../provider/phases/context";
import { Target } from "../../../provider/ssh/target";
import { Peer, sshPeer } from "../ssh/peer";

export interface Reply {
    code?: number;
    stdout?: string;
    stderr?: string;
    /** Ends every connection instead of answering (the machine goes down). */
    drop?: boolean;
    /** Answers, then ends every connection shortly after (a reboot that returns first). */
    dropAfter?: boolean;
}

export type Rule = [RegExp, Reply | ((command: string, stdin: string) => Reply)];

export interface Scripted {
    target: Target;
    ctx: PhaseContext;
    peer: Peer;
    /** Every command the target was sent, in order. */
    commands: string[];
    password: { value: string };
}

const peers: Peer[] = [];

/** Closes every peer made so far (call from afterAll). */
export function closePeers(): void {
    peers.splice(0).forEach((p) => p.close());
}

/** `password` is the one the peer accepts, read at each login: change it to refuse logins. */
export async function scriptedTarget(rules: Rule[], password = { value: "pw" }): Promise<Scripted> {
    const commands: string[] = [];
    let peer: Peer;
    const answer = (command: string, ch: ServerChannel) => {
        commands.push(command);
        let stdin = "";
        ch.on("data", (d: Buffer) => (stdin += d.toString()));
        ch.on("end", () => {
            const rule = rules.find(([re]) => re.test(command));
            const reply = rule ? (typeof rule[1] === "function" ? rule[1](command, stdin) : rule[1]) : {};
            if (reply.drop) return peer.dropAll();
            if (reply.stdout) ch.write(reply.stdout);
            if (reply.stderr) ch.stderr.write(reply.stderr);
            ch.exit(reply.code ?? 0);
            ch.end();
            if (reply.dropAfter) setTimeout(() => peer.dropAll(), 50);
        });
    };
    peer = await sshPeer(() => password.value, answer);
    peers.push(peer);
    const target = new Target({ host: "127.0.0.1", port: peer.port, password: "pw", hostKey: peer.hostKey, perDialTimeout: 2, dialErrorLimit: 1 });
    const ctx: PhaseContext = { target, log: () => undefined, env: process.env, cwd: process.cwd() };
    return { target, ctx, peer, commands, password };
}

"""The agent-side load driver shared by the admission tests (host, pure tier) and the hostile
helper tests (real systemd): a script run with `python -I -c AGENT_DRIVER MODE COUNTS...`.

Modes: `serial N`, `parallel N` (all at once, behind a barrier), `idle N M` (N connections
that send nothing, then M requests, then what the idle ones were answered). Settings come
from the environment: LP_DRIVER_SOCKET (default the helper's socket; `@name` is an abstract
socket), LP_DRIVER_TIMEOUT (default 120 s), LP_DRIVER_UID (become this uid after the imports),
LP_DRIVER_HANDSHAKE (in `idle`, print "idle-open" and wait for a line on stdin)."""

AGENT_DRIVER = r"""
import json, os, socket, sys, threading, time
from helper.contract.client import call
from helper.contract.protocol import DEFAULT_SOCKET, Request
mode, counts = sys.argv[1], [int(c) for c in sys.argv[2:]]
address = os.environ.get("LP_DRIVER_SOCKET", DEFAULT_SOCKET)
address = "\0" + address[1:] if address.startswith("@") else address
timeout = float(os.environ.get("LP_DRIVER_TIMEOUT", "120"))
if "LP_DRIVER_UID" in os.environ:
    uid = int(os.environ["LP_DRIVER_UID"])
    os.setgroups([]); os.setgid(uid); os.setuid(uid)
req = Request(version=1, verb="status", lane=os.environ["LANE"], dry_run=True)
def one():
    try:
        return call(address, req, timeout).ok
    except Exception as exc:
        return repr(exc)
out = {}
if mode == "idle":
    idle = []
    for _ in range(counts[0]):
        for _ in range(6000):  # the listen backlog may be full: retry (bounded)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(timeout)
            try:
                s.connect(address); idle.append(s); break
            except BlockingIOError:
                s.close(); time.sleep(0.01)
    if os.environ.get("LP_DRIVER_HANDSHAKE"):
        print("idle-open", flush=True); sys.stdin.readline()
    out["served"] = [one() for _ in range(counts[1])]
    answers = []
    for s in idle:
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        answers.append(json.loads(data[4:])["error"]["code"] if data else "closed-empty")
    out["idle_answers"] = answers
elif mode == "serial":
    out["served"] = [one() for _ in range(counts[0])]
else:
    results = [None] * counts[0]
    barrier = threading.Barrier(len(results))
    def run(i):
        barrier.wait()  # all at once
        results[i] = one()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(results))]
    [t.start() for t in threads]; [t.join() for t in threads]
    out["served"] = results
print(json.dumps(out), flush=True)
"""

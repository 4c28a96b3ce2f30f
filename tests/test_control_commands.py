"""The control socket's command grammar (proxy/control_commands.py) against a fake master:
which action a command line calls, with which arguments, and the exact reply texts.
The same commands over the real socket: test_e2e_server_states.py, test_e2e_stats.py."""

import select
import selectors
import socket

import msgpack
import pytest

from proxy.config import parse
from proxy.control import ControlConn
from proxy.control_commands import HELP, answer, answer_text

INFO = {"pid": 4242, "version": "9.9", "parser": "native", "uptime": 12.75, "nbproc": 2,
        "worker_restarts": 0, "stats_socket": "/tmp/x.sock", "workers": [], "old_workers": [],
        "reloads": 0}


CONFIG = parse("defaults\n    mode http\nfrontend fe\n    bind :8080\n    default_backend be\n"
               "backend be\n    server s1 127.0.0.1:81 weight 10\n"
               "    server s2 127.0.0.1:82 weight 3\n")


class FakeMaster:
    """The master's action interface, recording what the grammar asked of it."""

    servers = {("be", "s1"): 10, ("be", "s2"): 3}
    config = CONFIG

    def __init__(self):
        self.calls = []
        self.closed = []

    def close_control_conn(self, conn):
        self.closed.append(conn)
        conn.sock.close()

    def info(self):
        return dict(INFO)

    def report(self):
        return {"info": dict(INFO), "frontends": {}, "backends": {}}

    def configured_weight(self, backend, server):
        return self.servers[(backend, server)]

    def set_server_admin(self, backend, server, state):
        self.servers[(backend, server)]          # KeyError, as the master's
        self.calls.append(("admin", backend, server, state))

    def set_server_weight(self, backend, server, weight):
        self.calls.append(("weight", backend, server, weight))


@pytest.fixture
def master():
    return FakeMaster()


@pytest.mark.parametrize("line, call", [
    ("disable server be/s1", ("admin", "be", "s1", "maint")),
    ("enable server be/s1", ("admin", "be", "s1", "ready")),
    ("set server be/s2 state drain", ("admin", "be", "s2", "drain")),
    ("set server be/s2 state maint", ("admin", "be", "s2", "maint")),
    ("  set   server be/s2 state ready  ", ("admin", "be", "s2", "ready")),
])
def test_server_state_commands_call_set_server_admin_and_answer_an_empty_line(master, line, call):
    assert answer_text(master, line) == "\n"
    assert master.calls == [call]


@pytest.mark.parametrize("line, call", [
    ("set weight be/s1 0", ("weight", "be", "s1", 0)),
    ("set weight be/s1 256", ("weight", "be", "s1", 256)),
    ("set server be/s1 weight 42", ("weight", "be", "s1", 42)),
    ("set weight be/s1 50%", ("weight", "be", "s1", 5)),     # of the configured 10, rounded down
    ("set weight be/s2 100%", ("weight", "be", "s2", 3)),
    ("set weight be/s1 +7", ("weight", "be", "s1", 7)),
])
def test_weight_commands_call_set_server_weight_with_the_parsed_weight(master, line, call):
    assert answer_text(master, line) == "\n"
    assert master.calls == [call]


@pytest.mark.parametrize("value", ["257", "-1", "abc", "1.5", "0x10"])
def test_a_weight_out_of_range_or_not_a_number_is_refused_and_changes_nothing(master, value):
    # HAProxy 2.6.12's words (set weight app/s1 300)
    assert answer_text(master, "set server be/s1 weight %s" % value) == \
        "Absolute weight can only be between 0 and 256 inclusive.\n\n"
    assert master.calls == []


@pytest.mark.parametrize("value", ["%", "3000%"])
def test_a_bad_relative_weight_is_refused(master, value):
    assert answer_text(master, "set weight be/s1 %s" % value) == \
        "Relative weight must be positive.\n\n"
    assert master.calls == []


@pytest.mark.parametrize("line", ["disable server be/nope", "set server nope/s1 state drain",
                                  "set weight be/nope 1", "set server s1 weight 1",
                                  "get weight be/nope"])
def test_an_unknown_server_is_said_as_haproxy_says_it(master, line):
    assert answer_text(master, line) == "No such server.\n\n"
    assert master.calls == []


def test_get_weight_gives_the_current_and_the_configured(master):
    assert answer_text(master, "get weight be/s1") == "10 (initial 10)\n\n"


def test_an_unknown_state_is_a_usage_error_even_for_an_unknown_server(master):
    expected = "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n\n"
    assert answer_text(master, "set server be/s1 state sleep") == expected
    assert answer_text(master, "set server nope/x state sleep") == expected
    assert master.calls == []


def test_show_info_prints_haproxys_keys_in_its_order(master):
    text = answer_text(master, "show info")
    assert text.endswith("Tainted: 0\n\n")
    keys = [line.split(":", 1)[0] for line in text.splitlines() if line]
    assert keys[:9] == ["Name", "Version", "Release_date", "Nbthread", "Nbproc",
                        "Process_num", "Pid", "Uptime", "Uptime_sec"]
    assert "Unstoppable Jobs" in keys and "Build info" in keys and len(keys) == 69
    for line in ("Pid: 4242", "Uptime: 0d 0h00m12s", "Uptime_sec: 12", "Nbthread: 2",
                 "Version: 9.9", "DroppedLogs: 0", "Maxconn: 4096"):
        assert line + "\n" in text


@pytest.mark.parametrize("level", ["user", "operator"])
def test_a_socket_below_admin_level_may_read_but_not_change(master, level):
    assert answer_text(master, "show info", level).startswith("Name: keepwarm")
    for line in ("disable server be/s1", "enable server be/s1", "set server be/s1 state maint",
                 "set server be/s1 weight 5", "set weight be/s1 5"):
        assert answer_text(master, line, level) == "Permission denied\n\n"


def test_show_stat_is_haproxys_csv_with_its_filters(master):
    text = answer_text(master, "show stat")
    lines = text.splitlines()
    assert lines[0].startswith("# pxname,svname,qcur,") and text.endswith(",\n\n")
    assert [ln.split(",")[:2] for ln in lines[1:-1]] == [
        ["fe", "FRONTEND"], ["be", "s1"], ["be", "s2"], ["be", "BACKEND"]]
    assert all(ln.count(",") >= 51 for ln in lines[:-1])     # hatop skips shorter lines
    cols = lines[0][2:].split(",")
    s1 = dict(zip(cols, lines[2].split(",")))
    assert (s1["iid"], s1["sid"], s1["type"], s1["weight"], s1["pid"]) == ("3", "1", "2", "10",
                                                                        "1")
    servers = answer_text(master, "show stat 3 4 -1").splitlines()[1:-1]
    assert [ln.split(",")[1] for ln in servers] == ["s1", "s2"]
    assert [ln.split(",")[1] for ln in answer_text(master, "show stat -1 1 -1").splitlines()
            [1:-1]] == ["FRONTEND"]
    assert answer_text(master, "show stat 3 4 2").splitlines()[1].startswith("be,s2,")


def test_show_servers_state_and_show_backend(master):
    lines = answer_text(master, "show servers state").splitlines()
    assert lines[0] == "1" and lines[1].startswith("# be_id be_name srv_id srv_name")
    assert lines[2].split()[:5] == ["3", "be", "1", "s1", "127.0.0.1"]
    assert answer_text(master, "show servers state nope") == "Can't find backend.\n\n"
    assert answer_text(master, "show backend") == "# name\nbe\n\n"


@pytest.mark.parametrize("line", ["show table"])
def test_show_table_prints_the_human_table(master, line):
    text = answer_text(master, line)
    assert text.endswith("\n") and not text.startswith("# pxname")


@pytest.mark.parametrize("line", ["help", "", "   "])
def test_help_and_an_empty_line_list_the_commands(master, line):
    assert answer_text(master, line) == HELP + "\n"


@pytest.mark.parametrize("line", ["frobnicate", "disable server", "set server be/s1 state",
                                  "set weight be/s1", "show", "show servers"])
def test_an_unknown_or_incomplete_command_says_so_and_points_to_help(master, line):
    assert answer_text(master, line) == \
        "Unknown command: '%s'. Type 'help' for the list.\n\n" % line
    assert master.calls == []


def test_msgpack_requests_answer_stats_and_info(master):
    assert answer(master, {"cmd": "stats"}) == master.report()
    assert answer(master, {"cmd": "info"}) == INFO


@pytest.mark.parametrize("request_, error", [
    ({"cmd": "reboot"}, "unknown request 'reboot'"),
    ({"cmd": "?"}, "unknown request '?'"),
    ([1, 2], "unknown request None"),
])
def test_an_unknown_msgpack_request_is_an_error_map(master, request_, error):
    assert answer(master, request_) == {"error": error}


# -- ControlConn: a request read in pieces, over a real socketpair ---------------------

def serve(master, client, server_sock, *pieces):
    """Send `pieces` one by one, letting the connection read after each; return what
    came back once the connection closed."""
    conn = ControlConn(master, server_sock, 0.0)
    for piece in pieces:
        client.sendall(piece)
        select.select([server_sock], [], [], 2.0)
        conn.on_event(selectors.EVENT_READ)
    client.settimeout(2.0)
    assert master.closed == [conn], "the connection is still open after the request"
    return b"".join(iter(lambda: client.recv(65536), b""))


@pytest.fixture
def conn_pair():
    client, server_sock = socket.socketpair()
    server_sock.setblocking(False)
    yield client, server_sock
    client.close()
    server_sock.close()


def test_a_msgpack_request_cut_in_pieces_is_answered_once_whole(master, conn_pair):
    frame = msgpack.packb({"cmd": "info"}, use_bin_type=True)
    reply = serve(master, *conn_pair, frame[:1], frame[1:4], frame[4:])
    assert msgpack.unpackb(reply, raw=False) == INFO


def test_a_malformed_msgpack_request_is_answered_with_an_error(master, conn_pair):
    reply = serve(master, *conn_pair, b"\x81\xc1")
    assert msgpack.unpackb(reply, raw=False) == {"error": "unknown request '?'"}


def test_a_text_command_is_answered_once_its_line_ends(master, conn_pair):
    reply = serve(master, *conn_pair, b"set weight be/s1", b" 4\n")
    assert reply == b"\n"
    assert master.calls == [("weight", "be", "s1", 4)]


def test_commands_separated_by_semicolons_are_answered_in_turn(master, conn_pair):
    reply = serve(master, *conn_pair, b"get weight be/s1;get weight be/s2\n")
    assert reply == b"10 (initial 10)\n\n3 (initial 3)\n\n"     # HAProxy 2.6.12's bytes


def test_prompt_mode_answers_line_after_line_until_quit(master, conn_pair):
    client, server_sock = conn_pair
    conn = ControlConn(master, server_sock, 0.0)
    client.settimeout(2.0)

    def say(line):
        client.sendall(line)
        select.select([server_sock], [], [], 2.0)
        conn.on_event(selectors.EVENT_READ)

    def until_prompt():
        got = b""
        for _ in range(100):
            got += client.recv(65536)
            if got.endswith(b"> "):
                return got
        raise AssertionError(got)
    say(b"prompt\n")
    assert until_prompt() == b"\n> "                        # as HAProxy 2.6.12 answers it
    say(b"set timeout cli 60\n")
    assert until_prompt() == b"\n> " and conn.timeout == 60.0
    say(b"get weight be/s1\n")
    assert until_prompt() == b"10 (initial 10)\n\n> "
    say(b"set weight be/s2 2\n")
    assert until_prompt() == b"\n> "
    assert master.closed == [] and master.calls == [("weight", "be", "s2", 2)]
    say(b"quit\n")
    assert master.closed == [conn]
    assert client.recv(100) == b""


def test_show_stat_and_info_typed_and_json(master):
    import json
    typed = answer_text(master, "show stat typed").splitlines()
    assert typed[0] == "F.2.0.0.pxname.1:KNS:str:fe"          # HAProxy 2.6.12's first line
    assert "S.3.1.28.sid.1:KGS:u32:1" in typed and "S.3.1.19.act.1:SGP:u32:1" in typed
    rows = json.loads(answer_text(master, "show stat json"))
    assert [r[1]["value"]["value"] for r in rows] == ["FRONTEND", "s1", "s2", "BACKEND"]
    assert rows[0][0] == {"objType": "Frontend", "proxyId": 2, "id": 0,
                          "field": {"pos": 0, "name": "pxname"}, "processNum": 1,
                          "tags": {"origin": "Key", "nature": "Name", "scope": "Service"},
                          "value": {"type": "str", "value": "fe"}}
    assert answer_text(master, "show stat typed 3 4 2").startswith("S.3.2.0.pxname.1:")
    info = answer_text(master, "show info typed").splitlines()
    assert info[0] == "0.Name.1:POS:str:keepwarm" and info[6] == "6.Pid.1:SGP:u32:4242"
    fields = json.loads(answer_text(master, "show info json"))
    assert fields[7] == {"field": {"pos": 7, "name": "Uptime"}, "processNum": 1,
                         "tags": {"origin": "Metric", "nature": "Duration", "scope": "Process"},
                         "value": {"type": "str", "value": "0d 0h00m12s"}}


def test_show_pools_and_activity_answer_an_honest_subset(master):
    assert "no memory pools" in answer_text(master, "show pools")
    text = answer_text(master, "show activity")
    assert text.startswith("thread_id: 1 (1..1)\ndate_now: ") and "uptime_now: 12.75" in text

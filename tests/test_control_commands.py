"""The control socket's command grammar (proxy/control_commands.py) against a fake master:
which action a command line calls, with which arguments, and the exact reply texts.
The same commands over the real socket: test_e2e_server_states.py, test_e2e_stats.py."""

import select
import selectors
import socket

import msgpack
import pytest

from proxy.control import ControlConn
from proxy.control_commands import HELP, answer, answer_text

INFO = {"pid": 4242, "version": "9.9", "parser": "native", "uptime": 12.75, "nbproc": 2,
        "worker_restarts": 0, "stats_socket": "/tmp/x.sock", "workers": [], "old_workers": [],
        "reloads": 0}


class FakeMaster:
    """The master's action interface, recording what the grammar asked of it."""

    servers = {("be", "s1"): 10, ("be", "s2"): 3}

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


@pytest.mark.parametrize("value", ["257", "-1", "abc", "%", "3000%", "1.5", "0x10"])
def test_a_weight_out_of_range_or_not_a_number_is_refused_and_changes_nothing(master, value):
    assert answer_text(master, "set server be/s1 weight %s" % value) == \
        "Weight must be an integer between 0 and 256, or a percentage.\n"
    assert master.calls == []


@pytest.mark.parametrize("line", ["disable server be/nope", "set server nope/s1 state drain",
                                  "set weight be/nope 1", "set server s1 weight 1"])
def test_an_unknown_server_is_named_in_the_reply(master, line):
    target = line.split()[2]
    assert answer_text(master, line) == "No such server: '%s'.\n" % target
    assert master.calls == []


def test_an_unknown_state_is_a_usage_error_even_for_an_unknown_server(master):
    expected = "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
    assert answer_text(master, "set server be/s1 state sleep") == expected
    assert answer_text(master, "set server nope/x state sleep") == expected
    assert master.calls == []


def test_show_info_prints_the_keys_tools_read(master):
    assert answer_text(master, "show info") == (
        "Name: keepwarm\nVersion: 9.9\nPid: 4242\nUptime_sec: 12\nNbproc: 2\nParser: native\n"
        "node: \ndescription: \nDroppedLogs: 0\n")


@pytest.mark.parametrize("level", ["user", "operator"])
def test_a_socket_below_admin_level_may_read_but_not_change(master, level):
    assert answer_text(master, "show info", level).startswith("Name: keepwarm")
    for line in ("disable server be/s1", "enable server be/s1", "set server be/s1 state maint",
                 "set server be/s1 weight 5", "set weight be/s1 5"):
        assert answer_text(master, line, level) == "Permission denied\n"


def test_show_stat_is_the_csv_with_haproxys_header(master):
    assert answer_text(master, "show stat").startswith("# pxname,svname,qcur,")


@pytest.mark.parametrize("line", ["show table", "show", "show servers"])
def test_other_show_commands_print_the_human_table(master, line):
    text = answer_text(master, line)
    assert text.endswith("\n") and not text.startswith("# pxname")


@pytest.mark.parametrize("line", ["help", "", "   "])
def test_help_and_an_empty_line_list_the_commands(master, line):
    assert answer_text(master, line) == HELP


@pytest.mark.parametrize("line", ["frobnicate", "disable server", "set server be/s1 state",
                                  "set weight be/s1"])
def test_an_unknown_or_incomplete_command_says_so_and_points_to_help(master, line):
    assert answer_text(master, line) == \
        "Unknown command: '%s'. Type 'help' for the list.\n" % line
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

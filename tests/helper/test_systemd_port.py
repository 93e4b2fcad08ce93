"""The D-Bus adapter's own logic, against a stub bus: job waiting, errors, transient units."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from dbus_fast import Message, MessageType, Variant

from helper.contract.errors import SystemdFailed
from helper.contract.systemd import NO_SUCH_UNIT, DbusSystemd
from helper.contract.transient import TransientSpec, transient_properties

JOB = "/org/freedesktop/systemd1/job/42"


def job_removed(job: str, unit: str, result: str) -> Message:
    return Message.new_signal(
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "JobRemoved",
        "uoss",
        [42, job, unit, result],
    )


class StubBus:
    """Answers method calls from a table; can emit signals before or after a reply."""

    def __init__(self) -> None:
        self.handlers: list[Callable[[Message], Any]] = []
        self.sent: list[Message] = []
        self.replies: dict[str, Callable[[Message], Message]] = {}
        self.before_reply: list[Message] = []
        self.after_reply: list[Message] = []

    def add_message_handler(self, handler: Callable[[Message], Any]) -> None:
        self.handlers.append(handler)

    def emit(self, msg: Message) -> None:
        for handler in self.handlers:
            handler(msg)

    async def call(self, msg: Message) -> Message:
        msg.serial = len(self.sent) + 1
        self.sent.append(msg)
        for signal in self.before_reply:
            self.emit(signal)
        self.before_reply = []
        reply = self.replies.get(msg.member or "", Message.new_method_return)(msg)
        loop = asyncio.get_running_loop()
        for signal in self.after_reply:
            loop.call_soon(self.emit, signal)
        self.after_reply = []
        return reply


def port(bus: StubBus) -> DbusSystemd:
    return DbusSystemd(bus)  # type: ignore[arg-type]


def job_reply(msg: Message) -> Message:
    return Message.new_method_return(msg, "o", [JOB])


@pytest.mark.parametrize("when", ["before_reply", "after_reply"])
def test_start_unit_waits_for_its_job_even_if_it_ends_before_the_reply(when: str) -> None:
    bus = StubBus()
    bus.replies["StartUnit"] = job_reply
    getattr(bus, when).append(job_removed(JOB, "x.service", "done"))
    assert asyncio.run(port(bus).start_unit("x.service", 1.0)) == "done"
    assert [m.member for m in bus.sent] == ["AddMatch", "Subscribe", "StartUnit"]
    assert bus.sent[-1].body == ["x.service", "replace"]


def test_other_jobs_do_not_satisfy_the_wait() -> None:
    bus = StubBus()
    bus.replies["StopUnit"] = job_reply
    bus.after_reply += [job_removed("/job/1", "y", "failed"), job_removed(JOB, "x", "canceled")]
    assert asyncio.run(port(bus).stop_unit("x.service", 1.0)) == "canceled"


def test_a_job_that_never_ends_times_out() -> None:
    bus = StubBus()
    bus.replies["RestartUnit"] = job_reply
    with pytest.raises(SystemdFailed, match="did not finish"):
        asyncio.run(port(bus).restart_unit("x.service", 0.01))


def test_dbus_errors_become_systemd_failed() -> None:
    bus = StubBus()
    bus.replies["StartUnit"] = lambda m: Message.new_error(
        m, "org.freedesktop.systemd1.NoSuchUnit", "Unit x.service not found."
    )
    with pytest.raises(SystemdFailed, match="NoSuchUnit"):
        asyncio.run(port(bus).start_unit("x.service", 1.0))


UNIT_PROPS = {
    "LoadState": Variant("s", "loaded"),
    "ActiveState": Variant("s", "active"),
    "SubState": Variant("s", "running"),
    "UnitFileState": Variant("s", "enabled"),
    "DropInPaths": Variant("as", ["/etc/x.d/50-lane.conf"]),
    "MainPID": Variant("u", 77),
    "NRestarts": Variant("u", 2),
    "ControlGroup": Variant("s", "/system.slice/x.service"),
}


def get_all(m: Message) -> Message:
    return Message.new_method_return(m, "a{sv}", [UNIT_PROPS])


def no_such_unit(m: Message) -> Message:
    return Message.new_error(m, NO_SUCH_UNIT, "Unit x.service not loaded.")


def test_unit_properties_are_one_getall_over_every_interface_at_the_unit_path() -> None:
    bus = StubBus()
    bus.replies["GetAll"] = get_all
    props = asyncio.run(port(bus).unit_properties("x-y@a_b.service"))
    assert [m.member for m in bus.sent] == ["GetAll"]  # no LoadUnit, no Subscribe
    assert bus.sent[0].body == [""]
    assert bus.sent[0].path == "/org/freedesktop/systemd1/unit/x_2dy_40a_5fb_2eservice"
    assert (props.active_state, props.main_pid, props.n_restarts) == ("active", 77, 2)
    assert props.enabled
    assert props.running
    assert props.drop_in_paths == ("/etc/x.d/50-lane.conf",)


def test_service_fields_of_a_unit_that_is_not_loaded_are_not_taken() -> None:
    bus = StubBus()
    masked = {**UNIT_PROPS, "LoadState": Variant("s", "masked")}
    bus.replies["GetAll"] = lambda m: Message.new_method_return(m, "a{sv}", [masked])
    props = asyncio.run(port(bus).unit_properties("x.service"))
    assert (props.load_state, props.main_pid, props.control_group) == ("masked", 0, "")


def test_without_load_a_unit_systemd_does_not_hold_is_not_loaded() -> None:
    bus = StubBus()
    bus.replies["GetUnit"] = no_such_unit
    bus.replies["GetUnitFileState"] = lambda m: Message.new_method_return(m, "s", ["disabled"])
    bus.replies["GetAll"] = get_all
    props = asyncio.run(port(bus).unit_properties("x.service", load=False))
    assert [m.member for m in bus.sent] == ["GetUnit", "GetUnitFileState"]
    assert (props.load_state, props.active_state, props.unit_file_state) == (
        "not-found",
        "inactive",
        "disabled",
    )


@pytest.mark.parametrize("file_state", ["masked", "enabled", "linked", "ERROR"])
def test_without_load_an_installed_masked_or_unknown_file_state_is_read_in_full(
    file_state: str,
) -> None:
    bus = StubBus()
    bus.replies["GetUnit"] = no_such_unit
    bus.replies["GetUnitFileState"] = (
        (lambda m: Message.new_error(m, "org.freedesktop.DBus.Error.FileNotFound", "no"))
        if file_state == "ERROR"
        else (lambda m: Message.new_method_return(m, "s", [file_state]))
    )
    bus.replies["GetAll"] = get_all
    props = asyncio.run(port(bus).unit_properties("x.service", load=False))
    assert [m.member for m in bus.sent] == ["GetUnit", "GetUnitFileState", "GetAll"]
    assert props.main_pid == 77


def test_without_load_a_unit_systemd_holds_is_read_at_its_path() -> None:
    bus = StubBus()
    bus.replies["GetUnit"] = lambda m: Message.new_method_return(m, "o", ["/u/x"])
    bus.replies["GetAll"] = get_all
    props = asyncio.run(port(bus).unit_properties("x.service", load=False))
    assert [(m.member, m.path) for m in bus.sent][1] == ("GetAll", "/u/x")
    assert props.main_pid == 77


def test_loaded_units_is_one_list_by_patterns() -> None:
    bus = StubBus()
    row = ("a@1.service", "d", "loaded", "active", "running", "", "/u/a_401", 0, "", "/")
    bus.replies["ListUnitsByPatterns"] = lambda m: Message.new_method_return(
        m, "a(ssssssouso)", [[row]]
    )
    assert asyncio.run(port(bus).loaded_units("a@*.service")) == {"a@1.service": "/u/a_401"}
    assert bus.sent[0].body == [[], ["a@*.service"]]


def test_a_failed_step_reports_its_exit_status_and_is_reset() -> None:
    bus = StubBus()
    bus.replies["StartTransientUnit"] = job_reply
    bus.after_reply.append(job_removed(JOB, "step.service", "failed"))
    bus.replies["GetUnit"] = lambda m: Message.new_method_return(m, "o", ["/unit/step"])
    bus.replies["GetAll"] = lambda m: Message.new_method_return(
        m, "a{sv}", [{"ExecMainStatus": Variant("i", 65), "Result": Variant("s", "exit-code")}]
    )
    spec = TransientSpec("step.service", "d", ("/usr/bin/python3", "x"), "u", "/srv", ("/srv",))
    outcome = asyncio.run(port(bus).run_transient(spec, 9))
    assert (outcome.ok, outcome.exit_status, outcome.result) == (False, 65, "exit-code")
    start = next(m for m in bus.sent if m.member == "StartTransientUnit")
    assert start.unix_fds == [9]
    assert start.signature == "ssa(sv)a(sa(sv))"
    assert bus.sent[-1].member == "ResetFailedUnit"


def test_transient_properties_pass_stdin_as_a_descriptor_and_harden_the_step() -> None:
    spec = TransientSpec("s.service", "d", ("/py", "-I"), "runner", "/srv/r/l", ("/srv/r/l",))
    props = {name: (sig, value) for name, sig, value in transient_properties(spec)}
    assert props["StandardInputFileDescriptor"] == ("h", 0)
    assert props["User"] == ("s", "runner")
    assert props["ExecStart"] == ("a(sasb)", [["/py", ["/py", "-I"], False]])
    assert props["NoNewPrivileges"] == ("b", True)
    assert props["ProtectSystem"] == ("s", "strict")
    assert props["ReadWritePaths"] == ("as", ["/srv/r/l"])
    assert "SetCredential" not in props
    assert props["CapabilityBoundingSet"] == ("t", 0)
    assert props["AmbientCapabilities"] == ("t", 0)
    assert props["RestrictNamespaces"] == ("t", 0)
    assert props["ProtectProc"] == ("s", "invisible")
    assert props["SystemCallFilter"] == ("(bas)", (True, ["@system-service"]))
    assert props["RestrictAddressFamilies"][1][0] is True
    offline = {n: v for n, _, v in transient_properties(replace(spec, private_network=True))}
    assert offline["RestrictAddressFamilies"] == (True, ["AF_UNIX"])
    assert "Environment" in props
    assert not any("TOKEN" in entry for entry in props["Environment"][1])
    assert MessageType.SIGNAL  # the stub speaks real dbus-fast messages

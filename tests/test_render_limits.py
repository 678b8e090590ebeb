"""Rendering stops itself (issue 13 §4): templates and expressions are bounded in work (an
operation budget), in time (the step's and the run's timeout, though they render on the run's
loop, where no timer fires) and in size (each value built, the rendered text, all built).

Every test performs an attack. Those that could eat the machine's memory with a broken
implementation render in a child process under an address-space cap; those that could hang
are bounded by the test timeout (or the child's).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pardag import RunStatus
from pardag.errors import ExpressionError
from pardag.expressions import compile_expression
from pardag.readonly import freeze
from pardag.templates import render

pytestmark = pytest.mark.timeout(120)

WHERE = "step 'x' params.command"
NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
"""10^10 loop turns: hours of work."""
SLOW_TURNS = (
    "{% set a = range(100000)|list %}{% set b = range(100000)|list %}"
    "{% for i in range(100000) %}{% if a == b %}{% endif %}{% endfor %}"
)
"""100,000 loop turns, each comparing two long lists: few operations, a minute of work."""
SLOW_EXPRESSION = "range(100000)|select('in', range(100000, 200000)|list)|list|length > 0"
"""A test per item, each scanning all of a long list (no item is in it): hours of work. Each
test is charged about 100 operations (one per ``CHARGE_UNIT`` items it is given), so the
operation budget lasts ~10,000 tests, several seconds here: a timeout under a second comes
first."""
BUSY_EXPRESSION = "range(100000)|select('in', range(100000)|list)|list|length > 0"
"""The same, but item i is found at place i: it reaches the operation budget in about 0.4 s
here, before the 5 s a render may take (and a 0.5 s timeout, so it cannot test one)."""
CHILD_MEMORY = 1 << 30
CHILD_TIMEOUT = 60


CHILDREN = """
import atexit, json, os, resource, sys, tempfile, traceback
import pardag, pardag.budget, pardag.errors, pardag.expressions, pardag.templates

memory = int(sys.argv[1])
for request in map(json.loads, sys.stdin):
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0), os.dup2(out.fileno(), 1), os.dup2(err.fileno(), 2)
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            sys.argv = ["-c", *request["args"]]
            exec(compile(request["code"], "<child>", "exec"), {"__name__": "__main__"})
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (exc.code is not None)
        except BaseException:
            traceback.print_exc()
        finally:
            atexit._run_exitfuncs()
            sys.stdout.flush(), sys.stderr.flush()
            os._exit(status)
    print(json.dumps(pid), flush=True)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    out.seek(0), err.seek(0)
    said = [out.read().decode(errors="replace"), err.read().decode(errors="replace")]
    print(json.dumps([status, *said]), flush=True)
"""
"""A process that imports pardag once, then forks a child per request ({"code", "args"}),
which caps its address space at ``memory`` and runs ``code`` as ``python -c`` would, its
stdout and stderr in files; it says the child's pid, then [exit status, stdout, stderr]."""


class Children:
    """Runs code in children of one ``CHILDREN`` process: each child is a process of its own,
    under its own memory cap and timeout as before, without paying for a fresh interpreter
    and pardag's imports (~0.2-0.5 s each, most of this file's time)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILDREN, str(CHILD_MEMORY)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        self.said = b""
        self.child: int | None = None

    def run(self, code: str, args: tuple[str, ...]) -> tuple[int, str, str]:
        """``code`` run with ``args`` in a child: its exit status, stdout and stderr."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"code": code, "args": args}).encode() + b"\n")
        self.child = pid = int(self._line(CHILD_TIMEOUT) or b"no child")
        said = self._line(CHILD_TIMEOUT)
        if said is None:
            os.kill(pid, signal.SIGKILL)
            self._line(CHILD_TIMEOUT)  # the killed child's
            self.child = None
            pytest.fail(f"did not stop within {CHILD_TIMEOUT}s: {args or code}")
        self.child = None
        status, stdout, stderr = json.loads(said)
        return status, stdout, stderr

    def _line(self, timeout: float) -> bytes | None:
        """The next line the ``CHILDREN`` process writes; None if none within ``timeout``."""
        assert self.proc.stdout is not None
        ends = time.monotonic() + timeout
        while b"\n" not in self.said:
            left = ends - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            assert chunk, f"the children's process ended: {self.proc.wait()}"
            self.said += chunk
        line, _, self.said = self.said.partition(b"\n")
        return line

    def close(self) -> None:
        if self.child is not None:  # the test stopped mid-child (its timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.child, signal.SIGKILL)
        self.proc.kill()
        self.proc.wait()


_children: list[Children] = []


@pytest.fixture(autouse=True, scope="module")
def children() -> Iterator[None]:
    """The ``CHILDREN`` process this module's tests share."""
    _children.append(Children())
    yield
    _children.pop().close()


def in_child(code: str, *args: str) -> Any:
    """What ``code`` prints last (JSON), run in a child process that may use 1 GiB at most
    and is given ``CHILD_TIMEOUT`` seconds: a broken implementation fails the test rather
    than hanging it or eating the machine's memory."""
    status, stdout, stderr = _children[-1].run(textwrap.dedent(code), args)
    assert status == 0, stderr[-2000:]
    return json.loads(stdout.strip().splitlines()[-1])


RENDER = f"""
    import json, sys
    from pardag.errors import ExpressionError
    from pardag.templates import render
    try:
        out = render(sys.argv[1], {{}}, where={WHERE!r})
        print(json.dumps("rendered " + str(len(str(out)))))
    except ExpressionError as exc:
        print(json.dumps(str(exc)))
"""


COUNTERS_ONLY = "from pardag import budget\nbudget.MAX_SECONDS = 3600\n"
"""The default setup: the render's clock out of the way, so that a test of a counter sees the
counter stop it even on a loaded machine (the 5 s deadline once came first there)."""


def render_in_child(template: str, setup: str = COUNTERS_ONLY) -> str:
    """What rendering ``template`` says, in a child (``setup``: code run first)."""
    said = str(in_child(textwrap.dedent(setup) + textwrap.dedent(RENDER), template))
    assert said.startswith(WHERE + ": "), said
    return said


def run_in_child(steps: list[str], step: str, timeout: float | None = None) -> tuple[str, str]:
    """The status of a run of the workflow ``steps`` (lines adding to ``wf``) build, and
    ``step``'s error."""
    code = [
        "import json",
        "from pardag import Workflow",
        "wf = Workflow('hang')",
        *steps,
        f"result = wf.run(timeout={timeout!r})",
        f"print(json.dumps([result.status.value, str(result.steps[{step!r}].error)]))",
    ]
    status, error = in_child("\n".join(code))
    return status, error


# -- work and time ---------------------------------------------------------------------------


def test_nested_loops_stop_at_the_operation_budget() -> None:
    message = render_in_child(NESTED)
    assert "stopped after 1,000,000 operations" in message
    assert "compute the value in a step" in message


def test_a_loop_filter_is_charged_per_item_it_tests() -> None:
    """``{% for j in range(100000) if false %}`` never reaches the body: still charged."""
    inner = "{% for j in range(100000) if j < 0 %}{% endfor %}"
    assert "operations" in render_in_child("{% for i in range(100000) %}" + inner + "{% endfor %}")


def test_recursive_macros_are_charged_per_call() -> None:
    """2^40 macro calls and no loop at all."""
    macro = "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
    assert "operations" in render_in_child(macro + "{{ f(40) }}")


def test_a_render_stops_at_its_deadline() -> None:
    setup = """
        from pardag.budget import deadline
        limit = deadline((0.2, "the step's timeout (0.2s)"))
        limit.__enter__()
    """
    message = render_in_child(SLOW_TURNS, setup)
    assert "stopped: the step's timeout (0.2s) was up while it rendered" in message


def test_a_render_without_a_timeout_stops_after_its_own_limit() -> None:
    setup = """
        from pardag import budget
        budget.MAX_SECONDS = 0.2
    """
    assert "its limit of 0.2s per render was up" in render_in_child(SLOW_TURNS, setup)


def test_a_shell_step_template_stops_at_the_step_timeout() -> None:
    """The template renders on the run's loop: the step's timer cannot fire until it returns."""
    steps = [f"wf.add('x', kind='shell', params={{'command': {SLOW_TURNS!r}}}, timeout=1)"]
    status, error = run_in_child(steps, "x")
    assert status == RunStatus.FAILED.value
    assert "step 'x' params.command: stopped: the step's timeout (1s) was up" in error


def test_a_shell_step_with_nested_loops_fails_with_a_limit_naming_the_step() -> None:
    steps = [
        f"wf.add('x', kind='shell', params={{'command': 'echo ' + {NESTED!r}}}, timeout=1)",
        "wf.add('after', kind='shell', params={'command': 'echo after'}, depends_on=['x'])",
    ]
    status, error = run_in_child(steps, "x", 2)
    assert status != RunStatus.SUCCEEDED.value
    assert "step 'x' params.command: stopped" in error


def test_a_when_expression_stops_at_the_run_timeout() -> None:
    steps = [f"wf.add('x', kind='shell', params={{'command': 'echo'}}, when={SLOW_EXPRESSION!r})"]
    status, error = run_in_child(steps, "x", 0.5)
    assert status != RunStatus.SUCCEEDED.value
    assert "step 'x' when: stopped: the run's timeout (0.5s) was up" in error


def test_a_condition_expression_stops_at_the_step_timeout() -> None:
    params = {"expression": SLOW_EXPRESSION}
    steps = [f"wf.add('c', kind='condition', params={params!r}, timeout=0.5)"]
    status, error = run_in_child(steps, "c")
    assert status == RunStatus.FAILED.value
    assert "step 'c' expression: stopped: the step's timeout (0.5s) was up" in error


def test_expressions_have_the_same_operation_budget() -> None:
    code = f"""
        import json
        from pardag.errors import ExpressionError
        from pardag.expressions import compile_expression
        try:
            compile_expression({BUSY_EXPRESSION!r}, where="step 'x' when").evaluate({{}})
        except ExpressionError as exc:
            print(json.dumps(str(exc)))
    """
    assert str(in_child(code)).startswith("step 'x' when: stopped after 1,000,000 operations")


def test_expressions_refuse_to_join_huge_strings() -> None:
    expression = compile_expression("('a' * 1000000) ~ ('a' * 1000000)", where="step 'x' when")
    with pytest.raises(ExpressionError, match="too long: 2,000,000 items"):
        expression.evaluate({})


def test_templates_within_the_limits_render_as_before() -> None:
    loops = "{% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}ok"
    assert render(loops, {}, where=WHERE) == "ok"
    assert render("{{ 'a' * 1000000 ~ '' }}", {}, where=WHERE) == "a" * 1_000_000
    assert render("{{ '{:>5}'.format(1) }}|{{ '%-3s|'|format('x') }}", {}, where=WHERE) == (
        "    1|x  |"
    )
    assert render("{{ [1, 2]|tojson(indent=2) }}", {}, where=WHERE) == "[\n  1,\n  2\n]"


# -- size ------------------------------------------------------------------------------------

SIZE_ATTACKS = {
    "doubling with ~": (
        "{% set ns = namespace(s='a') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "a wide format field, 2000 times": (
        "{% for i in range(2000) %}{{ '{:>999999}'.format(1) }}{% endfor %}"
    ),
    "a repeated format field": "{{ ('{0}' * 100000).format('x' * 100000) }}",
    "format_map": "{{ ('{a}' * 100000).format_map({'a': 'x' * 100000}) }}",
    "a named %-format width": "{{ '%(a)999999999s'|format(a=1) }}",
    "a %-format repeated": "{{ ('%s' * 100000)|format(*(['x' * 100000] * 100000)) }}",
    "expandtabs": "{{ ('\t' * 100000).expandtabs(100000) }}",
    "wordwrap": "{{ ('x' * 100000)|wordwrap(1, wrapstring='y' * 100000) }}",
    "batch": "{{ [1]|batch(10**9, 0)|list|length }}",
    "slice": "{{ []|slice(10**9)|list|length }}",
    "tojson indent": "{{ {'a': [1, [2, [3]]]}|tojson(indent=10**8) }}",
    "indent by a string": "{{ ('x\n' * 100000)|indent('y' * 100000) }}",
    "join": "{{ (['x' * 100000] * 100000)|join }}",
    "str.join": "{{ ','.join(['x' * 100000] * 100000) }}",
    "translate": "{{ ('x' * 100000).translate({120: 'y' * 100000}) }}",
    "round filter": "{{ 5|round(-1000000000) }}",
    "sum of lists": "{{ ([[1]] * 1000000)|sum(start=[])|length }}",
    "many wide strings kept": "{{ range(100000)|map('center', 1000000)|list|length }}",
    "a macro's output": (
        "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}"
        "{% endmacro %}{{ m()|length }}"
    ),
    "format width (brief)": "{{ '{:>999999999}'.format(1) }}",
    "% width (brief)": "{{ '%999999999d' % 1 }}",
    "* (brief)": "{{ 'a' * 10**9 }}",
    "center (brief)": "{{ 'x'|center(10**9) }}",
}
REFUSALS = ("too long", "too large", "longer than", "stopped after", "not allowed")


@pytest.mark.parametrize("template", SIZE_ATTACKS.values(), ids=SIZE_ATTACKS.keys())
def test_size_attacks_are_refused_without_eating_memory(template: str) -> None:
    said = render_in_child(template)
    assert any(refusal in said for refusal in REFUSALS), said
    assert "MemoryError" not in said


# -- shared references -----------------------------------------------------------------------

ABC = "{% set a = ['x' * 100000] * 10 %}{% set b = [a] * 10 %}{% set c = [b] * 10 %}"
SHARED = ABC + "{% set d = [c] * 10 %}"
"""Forty items built, 10^10 characters when written out: each level refers to the one below
ten times (issue 13 §4)."""
HALF = "{% set a = ['x' * 100000] * 10 %}{% set b = [a] * 10 %}{% set c = [b] * 5 %}"
"""50,000,000 characters written out: within what a render may build, over what text may be."""
LITERAL = (
    "{% set a = 'x' * 100000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
    "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{% set d = (c, c, c, c, c, c, c, c, c, c) %}"
    "{% set e = {'1': d, '2': d, '3': d, '4': d, '5': d, '6': d, '7': d, '8': d} %}"
)
SHARED_ATTACKS = {
    "printed": SHARED + "{{ d }}",
    "tojson": SHARED + "{{ d|tojson }}",
    "~": SHARED + "{{ d ~ '' }}",
    "str()": SHARED + "{{ str(d)|length }}",
    "string": SHARED + "{{ d|string|length }}",
    "lower": SHARED + "{{ d|lower|length }}",
    "join": SHARED + "{{ d|join|length }}",
    "pprint": SHARED + "{{ d|pprint|length }}",
    "list": SHARED + "{{ d|list }}",
    "unique": (
        "{% set a = ('x' * 100000,) * 10 %}{% set b = (a,) * 10 %}{% set c = (b,) * 10 %}"
        "{% set d = (c,) * 10 %}{{ (d, d)|unique|list }}"
    ),
    "format": SHARED + "{{ '{}'.format(d)|length }}",
    "format !r": SHARED + "{{ '{!r}'.format(d)|length }}",
    "one expression": "{{ [[[['x' * 100000] * 10] * 10] * 10] * 10 }}",
    "literals": LITERAL + "{{ e|length }}{{ e }}",
    "+ doubling": (
        ABC + "{% set ns = namespace(v=[b]) %}{% for i in range(7) %}"
        "{% set ns.v = ns.v + ns.v %}{% endfor %}{{ ns.v }}"
    ),
    "batch fill": ABC + "{{ [1]|batch(1000, c)|list }}",
    "map": ABC + "{{ ([none] * 1000)|map('default', c, true)|list }}",
    "namespace": ABC
    + "{% set ns = namespace(a=c, b=c, c=c, d=c, e=c, f=c, g=c, h=c, i=c, j=c) %}{{ ns }}",
    "compared": (
        "{% set ns = namespace(a=['x'], b=['x']) %}{% for i in range(40) %}"
        "{% set ns.a = [ns.a, ns.a] %}{% set ns.b = [ns.b, ns.b] %}{% endfor %}{{ ns.a == ns.b }}"
    ),
    "macro arguments, compared": (
        "{% set ns = namespace(a=none, b=none) %}"
        "{% macro ma(n) %}{% if n %}{{ ma(n - 1, varargs, varargs) }}"
        "{% else %}{% set ns.a = varargs %}{% endif %}{% endmacro %}"
        "{% macro mb(n) %}{% if n %}{{ mb(n - 1, varargs, varargs) }}"
        "{% else %}{% set ns.b = varargs %}{% endif %}{% endmacro %}"
        "{{ ma(40, 'x') }}{{ mb(40, 'x') }}{{ ns.a == ns.b }}"
    ),
    "over the text cap, within the build cap": HALF + "{% set s = c|string %}{{ s|length }}",
    "over the text cap, joined": HALF + "{{ (c ~ '')|length }}",
}


@pytest.mark.parametrize("template", SHARED_ATTACKS.values(), ids=SHARED_ATTACKS.keys())
def test_values_sharing_items_are_weighed_as_written_out(template: str) -> None:
    said = render_in_child(template)
    assert "too large" in said, said
    assert "MemoryError" not in said


def test_a_shell_step_writing_out_shared_items_fails_naming_the_step() -> None:
    """In a template, and as a lone ``{{ }}`` (whose value would become the command)."""
    commands = {"x": "echo " + SHARED + "{{ d }}", "y": SHARED_ATTACKS["one expression"]}
    for step, command in commands.items():
        steps = [f"wf.add({step!r}, kind='shell', params={{'command': {command!r}}})"]
        status, error = run_in_child(steps, step)
        assert status == RunStatus.FAILED.value
        assert f"step {step!r} params.command: the value is too large" in error, error


def test_expressions_weigh_shared_items_alike() -> None:
    code = """
        import json
        from pardag.errors import ExpressionError
        from pardag.expressions import compile_expression
        source = "([[[['x' * 100000] * 10] * 10] * 10] * 10)|tojson|length > 0"
        try:
            compile_expression(source, where="step 'x' when").evaluate({})
        except ExpressionError as exc:
            print(json.dumps(str(exc)))
    """
    assert str(in_child(code)).startswith("step 'x' when: the value is too large")


def test_a_lone_expression_keeps_shared_items_shared() -> None:
    """Its value is data, not text: 40,000,000 characters written out, within what a render
    may build, but 1,111,111 lists if each reference were copied (MemoryError under 1 GiB)."""
    code = """
        import json
        from pardag.templates import render
        value = render("{{ " + "[" * 7 + "['']" + "]*10" * 7 + " }}", {}, where="x")
        print(json.dumps([value[0] is value[9], value[0][0] is value[9][9]]))
    """
    assert in_child(code) == [True, True]


def test_shared_items_within_the_limits_render_as_before() -> None:
    shared = "{% set a = ['ab'] * 3 %}{% set b = [a] * 2 %}"
    assert render(shared + "{{ b }}", {}, where=WHERE) == json.dumps([["ab"] * 3] * 2)
    assert render(shared + "{{ b|length }}:{{ b ~ '' }}", {}, where=WHERE).startswith("2:[[")
    assert render("{{ [x, x] }}", {"x": {"k": [1, 2]}}, where=WHERE) == [
        {"k": [1, 2]},
        {"k": [1, 2]},
    ]
    names = {"rows": [{"id": i} for i in range(3000)]}
    assert render("{{ rows|map(attribute='id')|list|length }}", names, where=WHERE) == 3000
    wide = {"rows": freeze([{"id": i, "blob": "x" * 1000} for i in range(11000)])}
    joined = render("{{ rows|join(',', attribute='id') }}", wide, where=WHERE)
    assert joined == ",".join(map(str, range(11000)))


def test_data_read_from_names_is_weighed_once_a_render() -> None:
    """A step's output put into a value 10,000 times: weighed the first time only (weighing
    it each time would take minutes and stop at the render's deadline)."""
    rows = [{"id": i, "name": f"row{i}"} for i in range(20000)]
    names = {"steps": freeze({"a": {"output": {"rows": rows}}})}
    template = "{% for i in range(10000) %}{{ [steps.a.output, i]|length }}{% endfor %}"
    assert render(template, names, where=WHERE) == "2" * 10000


def test_a_loop_cannot_grow_a_built_list_in_place() -> None:
    """``.append`` in a loop would build shared references with no build to weigh: refused
    by the immutable sandbox (as before this change)."""
    template = "{% set l = [] %}{% for i in range(10) %}{{ l.append(l) }}{% endfor %}"
    with pytest.raises(ExpressionError, match="'append' would change the list"):
        render(template, {}, where=WHERE)

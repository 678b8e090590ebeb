"""Conformance suites for your own executor or run store, run by pytest.

pardag's own executors and stores pass these suites; a third-party one runs the same tests by
subclassing a suite in its test module. The suites need pytest (and pytest-timeout for their
``timeout`` marks; without it a hung test hangs). ``import pardag`` never imports this
package, and the package imports none of its modules (a worker process imports the calls of
``pardag.testing.calls`` without pytest), so import each suite from its module:

* ``pardag.testing.executors.ExecutorSuite``: the ``Executor`` contract. Implement
  ``make_executor(max_workers)``; say what the executor cannot do in class attributes
  (``stoppable``, ``concurrent``, ``sized``) and ``coroutines = True`` if it runs
  ``async def`` functions. The calls it is given come from ``pardag.testing.calls``.
* ``pardag.testing.stores.StoreSuite``: the ``Store`` contract. Give it the fixture
  ``opener``: a callable opening a store of the test's own, empty the first time, the same
  store on every later call (picklable: processes open it too). ``persistent = False`` or
  ``multiprocess = False`` skip what a store in memory cannot do.
* ``pardag.testing.sqlstores.SQLStoreSuite``: ``StoreSuite``, plus the schema and migration
  tests of a store on ``pardag.store.schema``; ``opener`` takes ``create=False`` too, and a
  fixture ``raw(statement, *params)`` runs plain SQL on the store's database.

pytest collects a class named ``Test*`` in a ``test_*.py`` module, with the ``test_*`` methods
it inherits; the suites' own names do not start with ``Test``, so importing one collects
nothing by itself. For example, in ``tests/test_pardag_conformance.py``::

    import functools
    import pytest
    from pardag.testing.executors import ExecutorSuite
    from pardag.testing.stores import StoreSuite
    from mypackage import RedisStore, TrioExecutor

    class TestTrioExecutor(ExecutorSuite):
        stoppable = True   # the default; False if stop() cannot stop a running call
        def make_executor(self, max_workers):
            return TrioExecutor(max_workers)

    class TestRedisStore(StoreSuite):
        @pytest.fixture
        def opener(self, redis_url):  # redis_url: your fixture, a fresh database per test
            return functools.partial(RedisStore, redis_url)

Then ``pytest tests/test_pardag_conformance.py`` runs every test of both suites; a failure
names the suite's test, whose docstring or assertions say which part of the contract broke.
"""

import sys

if "pytest" in sys.modules:  # under pytest, have the suites' asserts show the values compared
    import pytest

    pytest.register_assert_rewrite(
        "pardag.testing.executors", "pardag.testing.stores", "pardag.testing.sqlstores"
    )

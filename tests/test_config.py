"""Config, using_config, no_grad, enable_grad, test_mode: scoping, decorators, threads, tasks."""
import asyncio
import threading

import numpy as np
import pytest

import leafgrad as lg
from leafgrad import Config, Variable, enable_grad, no_grad, test_mode, using_config


def square(x):
    return x * x


def test_defaults():
    assert Config.enable_backprop is True and Config.train is True


def test_no_grad_block_records_nothing_and_restores():
    x = Variable(np.array(2.0))
    with no_grad():
        assert Config.enable_backprop is False
        y = square(x)
        assert y.creator is None
    assert Config.enable_backprop is True
    assert square(x).creator is not None


def test_using_config_restores_on_exception():
    with pytest.raises(RuntimeError):
        with using_config("enable_backprop", False):
            raise RuntimeError("boom")
    assert Config.enable_backprop is True


def test_using_config_unknown_name():
    with pytest.raises(AttributeError, match="nonsense"):
        using_config("nonsense", 1)


def test_nested_and_enable_grad():
    x = Variable(np.array(2.0))
    with no_grad():
        with enable_grad():
            assert square(x).creator is not None
        assert square(x).creator is None


def test_decorators():
    @no_grad()
    def infer(x):
        return Config.enable_backprop, square(x)

    @test_mode()
    def evaluate():
        return Config.train

    flag, y = infer(Variable(np.array(1.0)))
    assert flag is False and y.creator is None
    assert evaluate() is False and Config.train is True


def test_direct_assignment_as_in_the_seed():
    try:
        Config.enable_backprop = False
        assert square(Variable(np.array(2.0))).creator is None
    finally:
        Config.enable_backprop = True
    assert square(Variable(np.array(2.0))).creator is not None


def test_no_grad_in_one_thread_does_not_affect_another():
    inside = threading.Event()
    release = threading.Event()
    seen = {}

    def holder():
        with no_grad():
            seen["holder"] = Config.enable_backprop
            inside.set()
            release.wait(5)

    def recorder():
        inside.wait(5)
        y = square(Variable(np.array(3.0)))
        seen["recorder"] = y.creator is not None
        release.set()

    threads = [threading.Thread(target=holder), threading.Thread(target=recorder)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"holder": False, "recorder": True}


def test_asyncio_tasks_are_isolated():
    async def in_no_grad(evt_in, evt_out):
        with no_grad():
            evt_in.set()
            await evt_out.wait()
            return Config.enable_backprop

    async def recording(evt_in, evt_out):
        await evt_in.wait()
        flag = Config.enable_backprop
        evt_out.set()
        return flag

    async def main():
        a, b = asyncio.Event(), asyncio.Event()
        return await asyncio.gather(in_no_grad(a, b), recording(a, b))

    assert asyncio.run(main()) == [False, True]


def test_test_mode_switches_train():
    with test_mode():
        assert Config.train is False
    assert Config.train is True
    assert lg.is_grad_enabled()


# ---- decorators on coroutines and generators; one object shared by threads and tasks (issue 17) ----
def test_no_grad_decorates_an_async_def():
    from leafgrad import no_grad, using_config, Config

    @no_grad()
    async def inside():
        await asyncio.sleep(0)
        return Config.enable_backprop

    @using_config("train", False)
    async def training_flag():
        await asyncio.sleep(0)
        return Config.train

    async def main():
        seen = await inside()
        return seen, Config.enable_backprop, await training_flag(), Config.train

    assert asyncio.run(main()) == (False, True, False, True)


def test_no_grad_decorates_a_generator_only_while_it_runs():
    from leafgrad import no_grad, Config

    @no_grad()
    def steps():
        got = yield Config.enable_backprop
        yield (got, Config.enable_backprop)

    gen = steps()
    assert next(gen) is False
    assert Config.enable_backprop is True  # not while it waits
    assert gen.send("x") == ("x", False)
    gen.close()
    assert Config.enable_backprop is True


def test_one_switch_object_shared_by_threads_and_tasks():
    from leafgrad import no_grad, Config
    switch = no_grad()
    errors, seen = [], []
    barrier = threading.Barrier(4)

    def work():
        try:
            for i in range(200):
                with switch:
                    if i == 0:
                        barrier.wait(10)  # all four threads inside the same object's block at once
                    seen.append(Config.enable_backprop)
                assert Config.enable_backprop is True
        except Exception as err:  # noqa: BLE001 - collected for the assertion below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and set(seen) == {False}

    async def task(k):
        with switch:
            await asyncio.sleep(0.001 * (3 - k))  # the tasks leave in another order than they entered
            inner = Config.enable_backprop
        return inner, Config.enable_backprop

    async def main():
        return await asyncio.gather(*(task(k) for k in range(4)))

    assert asyncio.run(main()) == [(False, True)] * 4

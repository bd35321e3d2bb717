"""A DeZero program that walks the graph the way the seed notes build it: ``creator.inputs`` and
``creator.outputs`` (weak references), with its own topological sort, node count and DOT text."""
import numpy as np

from dezero import Variable
import dezero.functions as F
from dezero.utils import get_dot_graph


def topological_order(output):
    """Functions from the inputs to ``output``, each once (depth first over creator.inputs)."""
    order, seen = [], set()
    stack = [(output.creator, False)]
    while stack:
        f, done = stack.pop()
        if f is None:
            continue
        if done:
            order.append(f)
            continue
        if f in seen:
            continue
        seen.add(f)
        stack.append((f, True))
        for x in reversed(f.inputs):
            stack.append((x.creator, False))
    return order


def describe(v, names):
    """A Variable as the walker sees it: its first-seen number, name, shape and dtype; constants with data."""
    key = names.setdefault(id(v), len(names))
    text = f"v{key}:{v.name}:{v.shape}:{v.dtype}"
    if v.creator is None:
        text += f"={v.data.tolist() if v.data is not None else None}"
    return text


def walk(title, output):
    order = topological_order(output)
    names = {}
    print(title, "functions", len(order))
    for f in order:
        ins = " ".join(describe(x, names) for x in f.inputs)
        outs = " ".join(describe(y(), names) for y in f.outputs)
        print(" ", type(f).__name__, "|", ins, "->", outs)
    print(title, "variables", len(names))


def normalized_dot(output, verbose):
    """get_dot_graph's text with node ids numbered in order of appearance."""
    ids = {}
    lines = []
    for line in get_dot_graph(output, verbose=verbose).splitlines():
        words = []
        for word in line.split(" "):
            if word.isdigit():
                word = "n%d" % ids.setdefault(word, len(ids))
            words.append(word)
        lines.append(" ".join(words))
    return lines


x = Variable(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), name="x")
w = Variable(np.array([[0.5], [-0.25], [0.125]]), name="w")
h = F.matmul(x, w) * 2 + 1            # constants: a Mul by 2 and an Add of 1
y = F.sum(1 - F.tanh(h) ** 2) / 3.0    # Sub with the constant first, Pow, Div
y.name = "y"
del h                                  # dropped: the walker must still see it
walk("forward", y)

# the book's step 35: the graph of tanh's second derivative
t = Variable(np.array(1.0), name="t")
z = F.tanh(t)
z.backward(create_graph=True)
gt = t.grad
t.cleargrad()
gt.backward(create_graph=True)
gt2 = t.grad
gt2.name = "gt2"
walk("tanh''", gt2)
print("tanh'' value", float(gt2.data))
for line in normalized_dot(gt2, verbose=False):
    print("dot", line)
for line in normalized_dot(y, verbose=True):
    print("dotv", line)

"""Build-time fusion: layer chains rewritten into the fused ops of ops/fused.py.

Each rewrite computes what the chain computed (up to rounding): the tests compare fused and
unfused engines. A chain is fused only when its inner values are read by nothing else (no
other layer, not a network output), and never through a layer the network constrains
(precision or output type set), so that the constraint still holds.

The rewrites, in the order they run:
- per-channel affine layers after a convolution (batch norm: scale, shift) folded into its
  kernel and bias;
- the erf form of GELU (x * (erf(x / sqrt 2) + 1) * 0.5, as torch exports it) into one
  activation;
- (q * s) @ (k^T * s) (* scale) (+ mask) -> softmax(last axis) -> @ v into scaled-dot-product
  attention (every scaling optional), which writes (batch, L, heads, Ev) itself when a
  transpose to that order follows;
- normalization over trailing axes into a single layer-norm kernel, with the residual add
  before it (a + b of two activations) read by the same kernel;
- x / sqrt(mean(x^2 over trailing axes) + eps) * scale (ONNX RMSNormalization, torch's
  export of LlamaRMSNorm) into a single RMS-norm kernel;
- matrix multiply by constant weights (+ bias) (+ activation) into one GEMM with epilogue;
- such GEMMs of one input with weights of one shape into one batched GEMM (several outputs);
- convolution (+ residual add) (+ activation) into one convolution with epilogue;
- a convolution's bias and ReLU moved past the max pooling that alone reads it, into the
  pooling's kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import torch

from ..device import DATATYPES
from ..ir import Graph, Node
from ..ops.pointwise import (
    BINARY_OPERATIONS,
    CAST_SOURCES,
    MAX_STEPS,
    UNARY_OPERATIONS,
    Step,
    StepKind,
    encode_program,
)
from ..ops.pooling import windows_hold_input
from ..types import (
    FLOATS,
    ActivationType,
    DataType,
    ElementWiseOperation,
    MatrixOperation,
    PoolingType,
    ReduceOperation,
    UnaryOperation,
)

SCALAR_TOLERANCE = 1e-6
"""Relative tolerance when recognizing the constants of a pattern (sqrt 2, 1, 0.5)."""

_ELEMENTWISE_FOLDS = {
    ElementWiseOperation.PROD,
    ElementWiseOperation.DIV,
    ElementWiseOperation.SUM,
    ElementWiseOperation.SUB,
}


def fuse(graph: Graph, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Apply every rewrite until none matches; nodes named in `keep` are left as they are.

    Each scan replaces every match that shares no node with an earlier one (the index is not
    updated while rewriting: overlapping matches wait for the next scan); the index is built
    again only after a scan that replaced something."""
    chains = _Chains(graph, keep)
    for rewrite in (
        fold_affine_into_convolution,
        fuse_gelu,
        fuse_attention,
        fuse_heads_transpose_into_attention,
        fuse_layer_norm,
        fuse_residual_into_layer_norm,
        fuse_rms_norm,
        fuse_matmul_bias_act,
        fuse_parallel_matmuls,
        fuse_conv_bias_act,
        move_epilogue_past_max_pool,
    ):
        while True:
            matches, _ = _matches(chains, graph.nodes, rewrite)
            if not matches:
                break
            _replace(graph, matches)
            chains = _Chains(graph, keep)


Rewrite = Callable[["_Chains", Node], "tuple[list[Node], Node | list[Node]] | None"]
"""A match: the chain it replaces, and the node (or nodes, in order) that take the place of the
chain's last node."""


Match = tuple[list[Node], list[Node]]
"""A chain of nodes, and the nodes that take the place of its last node."""


def _matches(
    chains: _Chains, nodes: list[Node], rewrite: Rewrite
) -> tuple[list[Match], list[Node]]:
    """The matches of `rewrite` at `nodes` (in graph order) that share no node with an earlier
    one, and the nodes whose match was left out for sharing one."""
    taken: set[int] = set()
    matches: list[Match] = []
    left_out: list[Node] = []
    for node in nodes:
        if node.name in chains.keep or id(node) in taken:
            continue
        match = rewrite(chains, node)
        if match is None:
            continue
        chain, fused = match
        if any(id(n) in taken for n in chain):
            left_out.append(node)
            continue
        taken.update(id(n) for n in chain)
        matches.append((chain, fused if isinstance(fused, list) else [fused]))
    return matches, left_out


def _replace(graph: Graph, matches: list[Match]) -> None:
    """Each match's chain replaced by its nodes, in the place of the chain's last node."""
    replaced = {id(chain[-1]): fused for chain, fused in matches}
    removed = {id(n) for chain, _ in matches for n in chain[:-1]}
    graph.nodes = [
        new for n in graph.nodes if id(n) not in removed for new in replaced.get(id(n), [n])
    ]


class _Chains:
    """Who produces and who reads each value: what pattern matching asks of the graph."""

    def __init__(self, graph: Graph, keep: set[str] | frozenset[str]) -> None:
        self.graph = graph
        self.keep = keep
        self.producer = {v: node for node in graph.nodes for v in node.outputs}
        self.readers: dict[int, list[Node]] = {}
        for node in graph.nodes:
            for value_id in node.inputs:
                if value_id is not None:
                    self.readers.setdefault(value_id, []).append(node)
        self.outputs = set(graph.outputs)
        self._positions: dict[int, tuple[int, ...]] = {
            id(node): (index,) for index, node in enumerate(graph.nodes)
        }

    def holds(self, node: Node) -> bool:
        """Whether `node` is in the graph (not replaced by `replace`)."""
        return id(node) in self._positions

    def position(self, node: Node) -> tuple[int, ...]:
        """A key that sorts nodes in graph order."""
        return self._positions[id(node)]

    def replace(self, matches: list[Match]) -> list[Node]:
        """Update the index as `_replace` changes the graph (which it leaves as it is): the
        nodes left that produce or read a value the matches' chains produced or read.

        The readers of values no node produces (constants, inputs, and the values inside the
        chains) are left as they were: no pointwise match asks for them, and a constant read
        by every node of a long chain would make each update as long as the chain."""
        gone = {id(n) for chain, _ in matches for n in chain}
        touched: dict[int, Node] = {}
        changed: set[int] = set()
        for chain, fused in matches:
            for member in chain:
                changed.update(v for v in (*member.inputs, *member.outputs) if v is not None)
                for value_id in member.outputs:
                    if self.producer.get(value_id) is member:
                        del self.producer[value_id]
            place = self._positions[id(chain[-1])]
            for offset, node in enumerate(fused):
                self._positions[id(node)] = (*place, offset)
                self.producer.update((v, node) for v in node.outputs)
                for value_id in dict.fromkeys(v for v in node.inputs if v is not None):
                    self.readers.setdefault(value_id, []).extend(
                        node for v in node.inputs if v == value_id
                    )
        for value_id in changed:
            producer = self.producer.get(value_id)
            if producer is None:
                continue
            readers = [r for r in self.readers.get(value_id, []) if id(r) not in gone]
            readers.sort(key=self.position)
            self.readers[value_id] = readers
            for node in (*readers, producer):
                touched[id(node)] = node
        for node_id in gone:
            del self._positions[node_id]
        return list(touched.values())

    def inner(self, value_id: int | None, op: str) -> Node | None:
        """The producer of `value_id` if it runs `op`, may be fused and nothing else reads it."""
        if value_id is None or value_id in self.outputs or len(self.readers[value_id]) != 1:
            return None
        node = self.producer.get(value_id)
        if node is None or node.op != op or node.name in self.keep:
            return None
        return node

    def reader(self, value_id: int, op: str) -> Node | None:
        """The one node that reads `value_id`, if it runs `op` and may be fused."""
        readers = self.readers.get(value_id, [])
        if value_id in self.outputs or len(readers) != 1:
            return None
        node = readers[0]
        return node if node.op == op and node.name not in self.keep else None

    def constant(self, value_id: int | None) -> torch.Tensor | None:
        return None if value_id is None else self.graph.constants.get(value_id)

    def scalar(self, value_id: int | None) -> float | None:
        """The value of a one-element float constant."""
        tensor = self.constant(value_id)
        if tensor is None or tensor.numel() != 1 or not tensor.is_floating_point():
            return None
        return float(tensor.reshape(()))

    def add_constant(self, name: str, tensor: torch.Tensor) -> int:
        value_id = self.graph.add_value(name, DATATYPES[tensor.dtype], tuple(tensor.shape))
        self.graph.constants[value_id] = tensor.contiguous()
        return value_id

    def shape(self, value_id: int) -> tuple[int, ...]:
        return self.graph.values[value_id].shape


def fold_affine_into_convolution(chains: _Chains, node: Node) -> tuple[list[Node], Node] | None:
    """conv(x, W, b) followed by * s, / s, + t or - t per output channel: new W and b."""
    if node.op != "elementwise" or node.attrs["op"] not in _ELEMENTWISE_FOLDS:
        return None
    operation = node.attrs["op"]
    commutative = operation in (ElementWiseOperation.PROD, ElementWiseOperation.SUM)
    for position in (0, 1) if commutative else (0,):
        conv = chains.inner(node.inputs[position], "convolution")
        operand = chains.constant(node.inputs[1 - position])
        if conv is None or operand is None:
            continue
        kernel = chains.constant(conv.inputs[1])
        has_bias = len(conv.inputs) > 2 and conv.inputs[2] is not None
        bias = chains.constant(conv.inputs[2]) if has_bias else None
        maps = conv.attrs["num_output_maps"]
        per_channel = _per_channel(operand, len(chains.shape(conv.outputs[0])), maps)
        if kernel is None or (has_bias and bias is None) or per_channel is None:
            continue
        if chains.shape(node.outputs[0]) != chains.shape(conv.outputs[0]):
            continue
        weights = kernel.double()
        shift = bias.double() if bias is not None else torch.zeros(maps, dtype=torch.float64)
        factor = per_channel.view(maps, *[1] * (weights.dim() - 1))
        if operation == ElementWiseOperation.PROD:
            weights, shift = weights * factor, shift * per_channel
        elif operation == ElementWiseOperation.DIV:
            weights, shift = weights / factor, shift / per_channel
        elif operation == ElementWiseOperation.SUM:
            shift = shift + per_channel
        else:
            shift = shift - per_channel
        name = _fused_name(conv, node)
        kernel_id = chains.add_constant(f"{name} [kernel]", weights.to(kernel.dtype))
        bias_id = chains.add_constant(f"{name} [bias]", shift.to(kernel.dtype))
        fused = Node(
            name,
            "convolution",
            dict(conv.attrs),
            [conv.inputs[0], kernel_id, bias_id],
            list(node.outputs),
        )
        return [conv, node], fused
    return None


def fuse_gelu(chains: _Chains, node: Node) -> tuple[list[Node], Node] | None:
    """(x * (erf(x / sqrt 2) + 1)) * 0.5, operands in either order, into GELU_ERF."""
    if not _is_elementwise(node, ElementWiseOperation.PROD):
        return None
    for half_at in (0, 1):
        if not _near(chains.scalar(node.inputs[half_at]), 0.5):
            continue
        product = chains.inner(node.inputs[1 - half_at], "elementwise")
        if product is None or product.attrs["op"] != ElementWiseOperation.PROD:
            continue
        for x_at in (0, 1):
            x = product.inputs[x_at]
            plus_one = chains.inner(product.inputs[1 - x_at], "elementwise")
            if plus_one is None or plus_one.attrs["op"] != ElementWiseOperation.SUM:
                continue
            erf = _with_scalar(chains, plus_one, 1.0, "unary")
            if erf is None or erf.attrs["op"] != UnaryOperation.ERF:
                continue
            scaled = chains.inner(erf.inputs[0], "elementwise")
            if scaled is None or scaled.inputs[0] != x:
                continue
            divisor = chains.scalar(scaled.inputs[1])
            if not (
                (scaled.attrs["op"] == ElementWiseOperation.DIV and _near(divisor, math.sqrt(2)))
                or (
                    scaled.attrs["op"] == ElementWiseOperation.PROD
                    and _near(divisor, math.sqrt(0.5))
                )
            ):
                continue
            fused = Node(
                _fused_name(scaled, node),
                "activation",
                {"type": ActivationType.GELU_ERF, "alpha": 0.0, "beta": 0.0},
                [x],
                list(node.outputs),
            )
            return [scaled, erf, plus_one, product, node], fused
    return None


def fuse_attention(chains: _Chains, node: Node) -> tuple[list[Node], Node] | None:
    """matmul(softmax(matmul(q, k^T) (* or / scalar) (+ mask)), v) into one attention op."""
    if node.op != "matrix_multiply" or node.attrs["op0"] != MatrixOperation.NONE:
        return None
    if node.attrs["op1"] != MatrixOperation.NONE:
        return None
    softmax, guard = chains.inner(node.inputs[0], "softmax"), []
    if softmax is None:
        found = _softmax_behind_nan_guard(chains, node.inputs[0])
        if found is None:
            return None
        softmax, guard = found
    rank = len(chains.shape(softmax.outputs[0]))
    if softmax.attrs["axes"] != 1 << (rank - 1):
        return None
    chain = [softmax, *guard, node]
    scores = softmax.inputs[0]
    mask = None
    masked = chains.inner(scores, "elementwise")
    if masked is not None and masked.attrs["op"] == ElementWiseOperation.SUM:
        for at in (0, 1):
            if _scores_of(chains, masked.inputs[at]) is not None:
                scores, mask = masked.inputs[at], masked.inputs[1 - at]
                chain.insert(0, masked)
                break
    if guard and not _masks_no_whole_row(chains, mask):
        return None  # a run-time mask may mask whole rows: the guard's zeros are then needed
    scale = 1.0
    scaled = chains.inner(scores, "elementwise")
    if scaled is not None:
        found = _scale_of(chains, scaled)
        if found is None:
            return None
        scores, scale = found
        chain.insert(0, scaled)
    product = chains.inner(scores, "matrix_multiply")
    if product is None or product.attrs["op0"] != MatrixOperation.NONE:
        return None
    chain.insert(0, product)
    q, k = product.inputs
    # torch's ONNX export of scaled_dot_product_attention scales q and k^T by sqrt(scale) each
    for at in (0, 1):
        operand = chains.inner(product.inputs[at], "elementwise")
        found = None if operand is None else _scale_of(chains, operand)
        if found is not None:
            chain.insert(0, operand)
            scale *= found[1]
            q, k = (found[0], k) if at == 0 else (q, found[0])
    v = node.inputs[1]
    if not len(chains.shape(q)) == len(chains.shape(k)) == len(chains.shape(v)) == rank:
        return None
    attrs = {
        "scale": scale,
        "key_transposed": product.attrs["op1"] == MatrixOperation.NONE,
        "heads_last": False,
        "backend": None,
    }
    inputs = [q, k, v] if mask is None else [q, k, v, mask]
    return chain, Node(_fused_name(product, node), "attention", attrs, inputs, list(node.outputs))


def _softmax_behind_nan_guard(
    chains: _Chains, value_id: int | None
) -> tuple[Node, list[Node]] | None:
    """where(isnan(p), 0, p) with p = softmax(...): torch's ONNX export of
    scaled_dot_product_attention zeroes the weights of a row that came out NaN. The softmax
    and the guard's two nodes, when nothing else reads p."""
    select = chains.inner(value_id, "select")
    if select is None:
        return None
    condition, zero, weights = select.inputs
    isnan = chains.inner(condition, "unary")
    if isnan is None or isnan.attrs["op"] != UnaryOperation.ISNAN or isnan.inputs[0] != weights:
        return None
    if chains.scalar(zero) != 0.0 or weights in chains.outputs:
        return None
    if {id(reader) for reader in chains.readers[weights]} != {id(isnan), id(select)}:
        return None
    softmax = chains.producer.get(weights)
    if softmax is None or softmax.op != "softmax" or softmax.name in chains.keep:
        return None
    return softmax, [isnan, select]


def _masks_no_whole_row(chains: _Chains, value_id: int | None) -> bool:
    """No mask, or a constant one without NaN or +inf in which every row (the last axis)
    keeps an entry above -inf (a causal mask keeps the diagonal). No row of weights is then
    NaN but for non-finite q or k, the one case where the NaN guard differs from the fused
    attention (which follows torch's SDPA there)."""
    if value_id is None:
        return True
    values = chains.constant(value_id)
    if values is None or not values.is_floating_point() or values.numel() == 0:
        return False
    if bool(values.isnan().any()) or bool((values == math.inf).any()):
        return False
    return bool((values > -math.inf).any(-1).all())


def fuse_heads_transpose_into_attention(
    chains: _Chains, node: Node
) -> tuple[list[Node], Node] | None:
    """attention (batch, heads, L, Ev) then a transpose to (batch, L, heads, Ev): the attention
    writes that order itself (then the reshape merging the heads is a view)."""
    if node.op != "attention" or node.attrs["heads_last"]:
        return None
    if len(chains.shape(node.outputs[0])) != 4:
        return None
    transpose = chains.reader(node.outputs[0], "shuffle")
    if transpose is None or len(transpose.inputs) > 1:
        return None
    if transpose.attrs["reshape_dims"] is not None:
        return None
    if tuple(transpose.attrs["first_transpose"][:4]) != (0, 2, 1, 3):
        return None
    if tuple(transpose.attrs["second_transpose"][:4]) != (0, 1, 2, 3):
        return None
    attrs = {**node.attrs, "heads_last": True}
    fused = Node(_fused_name(node, transpose), "attention", attrs, node.inputs, transpose.outputs)
    return [node, transpose], fused


def fuse_layer_norm(chains: _Chains, node: Node) -> tuple[list[Node], Node] | None:
    """Normalization over the trailing axes in FLOAT, one scale and bias per element: layer norm."""
    if node.op != "normalization" or node.attrs["num_groups"] != 1:
        return None
    if node.attrs["compute_precision"] != DataType.FLOAT:
        return None  # the fused kernel accumulates in FLOAT
    x, scale, bias = node.inputs
    shape = chains.shape(x)
    rank = len(shape)
    dims = _trailing_dims(node.attrs["axes"], rank)
    if dims == 0:
        return None
    normalized = shape[rank - dims :]
    if -1 in normalized:
        return None
    for value_id in (scale, bias):
        other = chains.shape(value_id)
        if len(other) != rank or other[rank - dims :] != normalized:
            return None
        if any(d != 1 for d in other[: rank - dims]):
            return None
    attrs = {"epsilon": node.attrs["epsilon"], "dims": dims}
    return [node], Node(node.name, "layer_norm", attrs, list(node.inputs), list(node.outputs))


def fuse_residual_into_layer_norm(chains: _Chains, node: Node) -> tuple[list[Node], Node] | None:
    """layer_norm(a + b), a and b activations of the sum's rank: one kernel reads both (when
    their shapes are equal at run time; otherwise the sum broadcasts first)."""
    if node.op != "layer_norm" or len(node.inputs) != 3:
        return None
    added = chains.inner(node.inputs[0], "elementwise")
    if added is None or added.attrs["op"] != ElementWiseOperation.SUM:
        return None
    a, b = added.inputs
    rank = len(chains.shape(node.inputs[0]))
    if any(chains.constant(v) is not None or len(chains.shape(v)) != rank for v in (a, b)):
        return None
    name = _fused_name(added, node)
    return [added, node], Node(
        name, "layer_norm", dict(node.attrs), [a, *node.inputs[1:], b], list(node.outputs)
    )


def fuse_rms_norm(chains: _Chains, node: Node) -> tuple[list[Node], Node] | None:
    """x / sqrt(mean(x^2 over trailing axes) + eps) * scale (a constant, either side) into one
    RMS-norm kernel: ONNX RMSNormalization as imported, torch's export of LlamaRMSNorm. x^2 is
    x * x or pow(x, 2); the division x / sqrt, x * recip(sqrt) or x * (1 / sqrt). A cast of x
    before the statistics with a cast back to x's type before the scale (statistics in FLOAT)
    fuses too: the kernel accumulates in FLOAT whatever the type."""
    if not _is_elementwise(node, ElementWiseOperation.PROD):
        return None
    for scale_at in (0, 1):
        scale = chains.constant(node.inputs[scale_at])
        found = None if scale is None else _rms_normalized(chains, node.inputs[1 - scale_at])
        if found is None:
            continue
        chain, x, dims, epsilon = found
        shape = chains.shape(x)
        normalized = shape[len(shape) - dims :]
        if -1 in normalized or chains.shape(node.outputs[0]) != shape:
            continue
        per_element = _per_element(scale, normalized, len(shape))
        if per_element is None:
            continue
        types = {chains.graph.values[v].dtype for v in (x, node.inputs[scale_at], node.outputs[0])}
        if len(types) != 1 or not types <= FLOATS:
            continue
        name = _fused_name(chain[0], node)
        scale_id = node.inputs[scale_at]
        if per_element is not scale:
            scale_id = chains.add_constant(f"{name} [scale]", per_element)
        attrs = {"epsilon": epsilon, "dims": dims}
        return [*chain, node], Node(name, "rms_norm", attrs, [x, scale_id], list(node.outputs))
    return None


def _rms_normalized(chains: _Chains, value_id: int) -> tuple[list[Node], int, int, float] | None:
    """The chain x / sqrt(mean(x^2) + eps) computing `value_id`, casts around it included:
    (its nodes in order, x, how many trailing axes the mean takes, eps)."""
    back = chains.inner(value_id, "cast")
    quotient = chains.inner(value_id if back is None else back.inputs[0], "elementwise")
    found = None if quotient is None else _divided_by_root(chains, quotient)
    if found is None:
        return None
    v, root = found
    shifted = chains.inner(root[0].inputs[0], "elementwise")
    if shifted is None or shifted.attrs["op"] != ElementWiseOperation.SUM:
        return None
    for eps_at in (0, 1):
        epsilon = chains.scalar(shifted.inputs[eps_at])
        mean = chains.inner(shifted.inputs[1 - eps_at], "reduce")
        if epsilon is not None and mean is not None:
            break
    else:
        return None
    if mean.attrs["op"] != ReduceOperation.AVG or not mean.attrs["keep_dims"]:
        return None
    dims = _trailing_dims(mean.attrs["axes"], len(chains.shape(v)))
    square = chains.inner(mean.inputs[0], "elementwise")
    if dims == 0 or square is None or not _is_square_of(chains, square, v):
        return None
    chain = [square, mean, shifted, *root, quotient]
    if back is None:
        return chain, v, dims, epsilon
    # the cast back is fused only with the cast it undoes, read by nothing but the chain
    front = chains.producer.get(v)
    if front is None or front.op != "cast" or front.name in chains.keep or v in chains.outputs:
        return None
    if any(reader is not square and reader is not quotient for reader in chains.readers[v]):
        return None
    x = front.inputs[0]
    if chains.graph.values[v].dtype != DataType.FLOAT:
        return None  # statistics in a narrower type than the kernel's would change results
    if chains.graph.values[x].dtype != chains.graph.values[back.outputs[0]].dtype:
        return None
    return [front, *chain, back], x, dims, epsilon


def _divided_by_root(chains: _Chains, node: Node) -> tuple[int, list[Node]] | None:
    """For v / sqrt(s), or v * recip(sqrt(s)) or v * (1 / sqrt(s)) in either order: v and
    the nodes from the sqrt to the inverse."""
    if _is_elementwise(node, ElementWiseOperation.DIV):
        sqrt = _unary_of(chains, node.inputs[1], UnaryOperation.SQRT)
        return None if sqrt is None else (node.inputs[0], [sqrt])
    if not _is_elementwise(node, ElementWiseOperation.PROD):
        return None
    for v_at in (0, 1):
        inverse = _unary_of(chains, node.inputs[1 - v_at], UnaryOperation.RECIP)
        if inverse is not None:
            root = inverse.inputs[0]
        else:  # ONNX Reciprocal imports as 1 / s
            inverse = chains.inner(node.inputs[1 - v_at], "elementwise")
            if inverse is None or not _is_elementwise(inverse, ElementWiseOperation.DIV):
                continue
            if not _near(chains.scalar(inverse.inputs[0]), 1.0):
                continue
            root = inverse.inputs[1]
        sqrt = _unary_of(chains, root, UnaryOperation.SQRT)
        if sqrt is not None:
            return node.inputs[v_at], [sqrt, inverse]
    return None


def _is_square_of(chains: _Chains, node: Node, value_id: int) -> bool:
    """Whether `node` computes value * value or pow(value, 2)."""
    if _is_elementwise(node, ElementWiseOperation.PROD):
        return node.inputs[0] == node.inputs[1] == value_id
    return (
        _is_elementwise(node, ElementWiseOperation.POW)
        and node.inputs[0] == value_id
        and _near(chains.scalar(node.inputs[1]), 2.0)
    )


def _unary_of(chains: _Chains, value_id: int, operation: UnaryOperation) -> Node | None:
    """The producer of `value_id` if it is that unary operation and may be fused."""
    node = chains.inner(value_id, "unary")
    return node if node is not None and node.attrs["op"] == operation else None


def _per_element(
    values: torch.Tensor, normalized: tuple[int, ...], rank: int
) -> torch.Tensor | None:
    """A constant as one value per element of the trailing `normalized` dims (of an input of
    `rank`): itself when it has that shape after leading ones, else expanded to it; None when
    it is no float or varies along the other axes."""
    if not values.is_floating_point() or values.dim() > rank:
        return None
    shape = (1,) * (rank - values.dim()) + tuple(values.shape)
    leading, trailing = shape[: rank - len(normalized)], shape[rank - len(normalized) :]
    if any(d != 1 for d in leading):
        return None
    if any(d not in (1, n) for d, n in zip(trailing, normalized, strict=True)):
        return None
    if trailing == normalized and values.dim() >= len(normalized):
        return values
    return values.reshape(trailing).expand(normalized).contiguous()


def _trailing_dims(mask: int, rank: int) -> int:
    """How many axes an axes bit mask names when they are the last ones of `rank`; else 0."""
    dims = rank - (mask & -mask).bit_length() + 1 if mask else 0
    return dims if dims >= 1 and mask == ((1 << rank) - 1) ^ ((1 << (rank - dims)) - 1) else 0


def fuse_matmul_bias_act(chains: _Chains, node: Node) -> tuple[list[Node], Node] | None:
    """x @ W (constant) (+ b) (+ activation) into one GEMM whose epilogue adds and activates."""
    if node.op != "matrix_multiply" or node.attrs["op0"] != MatrixOperation.NONE:
        return None
    if node.attrs["op1"] == MatrixOperation.VECTOR:
        return None
    weight = chains.constant(node.inputs[1])
    if weight is None or weight.dim() < 2 or any(d != 1 for d in weight.shape[:-2]):
        return None
    if len(chains.shape(node.inputs[0])) < 2:
        return None
    matrix = weight.reshape(weight.shape[-2:])
    if node.attrs["op1"] == MatrixOperation.NONE:
        matrix = matrix.t()
    features = matrix.shape[0]
    chain = [node]
    result = node.outputs[0]
    bias = None
    added = chains.reader(result, "elementwise")
    if added is not None and added.attrs["op"] == ElementWiseOperation.SUM:
        other = added.inputs[1] if added.inputs[0] == result else added.inputs[0]
        values = chains.constant(other)
        rank = len(chains.shape(result))
        if _is_bias(values, rank, features):
            bias = values.reshape(-1).expand(features)
            chain.append(added)
            result = added.outputs[0]
    activation = _activation_after(chains, result)
    if activation is not None:
        chain.append(activation)
    if len(chain) == 1:
        return None
    name = _fused_name(chain[0], chain[-1])
    inputs = [node.inputs[0], chains.add_constant(f"{name} [weight]", matrix.contiguous())]
    if bias is not None:
        inputs.append(chains.add_constant(f"{name} [bias]", bias.contiguous()))
    attrs = {**_epilogue(activation), "splits": 1}
    return chain, Node(name, "matmul_bias_act", attrs, inputs, chain[-1].outputs)


def fuse_parallel_matmuls(chains: _Chains, node: Node) -> tuple[list[Node], Node] | None:
    """GEMMs of one input by constant weights of one shape, with the same epilogue (a
    transformer's query, key and value projections): one node that runs them as one batched
    GEMM and writes their outputs back to back."""
    if node.op != "matmul_bias_act" or node.attrs["splits"] != 1:
        return None
    x = node.inputs[0]
    weight = chains.constant(node.inputs[1])
    if weight is None:
        return None
    group = [node]
    for other in chains.readers[x]:
        if other is node or other.op != "matmul_bias_act" or other.name in chains.keep:
            continue
        if other.inputs[0] != x or other.attrs != node.attrs:
            continue
        if len(other.inputs) != len(node.inputs) or any(
            chains.constant(v) is None for v in other.inputs[1:]
        ):
            continue
        if chains.constant(other.inputs[1]).shape == weight.shape:
            group.append(other)
    if len(group) < 2:
        return None
    name = " + ".join(member.name for member in group)
    inputs = [x]
    for position, what in ((1, "weight"), (2, "bias")):
        if position < len(node.inputs):
            joined = torch.cat([chains.constant(m.inputs[position]) for m in group])
            inputs.append(chains.add_constant(f"{name} [{what}]", joined))
    attrs = {**node.attrs, "splits": len(group)}
    outputs = [member.outputs[0] for member in group]
    # in place of the first of them: the others' readers may come before them
    return [*group[1:], node], Node(name, "matmul_bias_act", attrs, inputs, outputs)


def fuse_conv_bias_act(chains: _Chains, node: Node) -> tuple[list[Node], Node] | None:
    """conv (+ residual) (+ activation) into one convolution with an epilogue."""
    if node.op != "convolution":
        return None
    chain = [node]
    result = node.outputs[0]
    residual = None
    added = chains.reader(result, "elementwise")
    if added is not None and added.attrs["op"] == ElementWiseOperation.SUM:
        other = added.inputs[1] if added.inputs[0] == result else added.inputs[0]
        same = chains.shape(added.outputs[0]) == chains.shape(result)
        if other != result and same and len(chains.shape(other)) == len(chains.shape(result)):
            residual = other
            chain.append(added)
            result = added.outputs[0]
    activation = _activation_after(chains, result)
    if activation is not None:
        chain.append(activation)
    kernel = chains.constant(node.inputs[1])
    channels_last = kernel is not None and kernel.dim() == 4
    if len(chain) == 1 and not channels_last:
        return None
    name = _fused_name(chain[0], chain[-1])
    inputs = list((*node.inputs, None)[:3])
    if channels_last:
        inputs[1] = chains.add_constant(f"{name} [kernel KRSC]", kernel.permute(0, 2, 3, 1))
    if residual is not None:
        inputs.append(residual)
    while inputs[-1] is None:
        inputs.pop()
    attrs = {**node.attrs, **_epilogue(activation), "channels_last": channels_last}
    return chain, Node(name, "conv_bias_act", attrs, inputs, list(chain[-1].outputs))


def move_epilogue_past_max_pool(
    chains: _Chains, node: Node
) -> tuple[list[Node], list[Node]] | None:
    """conv_bias_act (bias and/or ReLU, no residual) read only by a 2D max pooling: the bias
    and ReLU move past the pooling (they commute with the maximum), which becomes a
    pool_bias_act reading the raw convolution; the convolution's epilogue pass is gone."""
    if node.op != "pooling" or node.attrs["type"] != PoolingType.MAX:
        return None
    conv = chains.inner(node.inputs[0], "conv_bias_act")
    if conv is None or len(conv.inputs) > 3:
        return None
    activation = conv.attrs["activation"]
    if activation not in (None, ActivationType.RELU) or (
        len(conv.inputs) < 3 and activation is None
    ):
        return None
    shape = chains.shape(node.inputs[0])
    if len(shape) != 4 or not windows_hold_input(shape, node.attrs):
        return None
    raw = Node(conv.name, conv.op, {**conv.attrs, **_epilogue(None)}, conv.inputs[:2], conv.outputs)
    epilogue = {key: conv.attrs[key] for key in ("activation", "alpha", "beta")}
    pooled = Node(
        node.name,
        "pool_bias_act",
        {**node.attrs, **epilogue},
        [node.inputs[0], *conv.inputs[2:]],
        list(node.outputs),
    )
    return [conv, node], [raw, pooled]


def _is_bias(values: torch.Tensor | None, rank: int, features: int) -> bool:
    """A constant of the output's rank holding one value, or one per output feature (last dim)."""
    if values is None or values.dim() != rank or values.numel() not in (1, features):
        return False
    return all(d == 1 for d in values.shape[:-1])


def _scale_of(chains: _Chains, node: Node) -> tuple[int, float] | None:
    """For scores * c, c * scores or scores / c with a scalar constant c: (scores, scale).
    Only a finite, non-zero c: scaling by 0, infinity or NaN makes the graph's own NaNs
    (0 * inf, inf - inf), which a fused attention with that scale would not make."""
    operation = node.attrs["op"]
    for at in (1, 0) if operation == ElementWiseOperation.PROD else (1,):
        factor = chains.scalar(node.inputs[at])
        if factor is None or factor == 0 or not math.isfinite(factor):
            continue
        if operation == ElementWiseOperation.PROD:
            return node.inputs[1 - at], factor
        if operation == ElementWiseOperation.DIV:
            return node.inputs[0], 1.0 / factor
    return None


def _scores_of(chains: _Chains, value_id: int | None) -> Node | None:
    """The q @ k^T product behind `value_id`, directly or through a scaling by a scalar."""
    product = chains.inner(value_id, "matrix_multiply")
    if product is not None:
        return product
    scaled = chains.inner(value_id, "elementwise")
    found = None if scaled is None else _scale_of(chains, scaled)
    return None if found is None else chains.inner(found[0], "matrix_multiply")


def _activation_after(chains: _Chains, value_id: int) -> Node | None:
    """The activation layer that alone reads `value_id`, if any."""
    return chains.reader(value_id, "activation")


def _epilogue(activation: Node | None) -> dict:
    if activation is None:
        return {"activation": None, "alpha": 0.0, "beta": 0.0}
    return {key: activation.attrs[key] for key in ("alpha", "beta")} | {
        "activation": activation.attrs["type"]
    }


def _per_channel(operand: torch.Tensor, rank: int, maps: int) -> torch.Tensor | None:
    """A constant of shape [1, maps or 1, 1, ...] as `maps` float64 values; None otherwise."""
    if not operand.is_floating_point() or operand.dim() != rank:
        return None
    shape = tuple(operand.shape)
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, maps):
        return None
    return operand.reshape(-1).double().expand(maps).clone()


def _with_scalar(chains: _Chains, node: Node, value: float, op: str) -> Node | None:
    """For a binary node with the scalar `value` as one operand: the producer of the other."""
    for at in (0, 1):
        if _near(chains.scalar(node.inputs[at]), value):
            producer = chains.inner(node.inputs[1 - at], op)
            if producer is not None:
                return producer
    return None


def _is_elementwise(node: Node, operation: ElementWiseOperation) -> bool:
    return node.op == "elementwise" and node.attrs["op"] == operation


def _near(value: float | None, expected: float) -> bool:
    return value is not None and math.isclose(value, expected, rel_tol=SCALAR_TOLERANCE)


def _fused_name(first: Node, last: Node) -> str:
    """TensorRT's naming of fused layers: the names joined with ' + '."""
    return first.name if first is last else f"{first.name} + {last.name}"


def fuse_pointwise(graph: Graph, keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Connected elementwise, unary, activation and cast layers into one `pointwise` node
    each (one generated kernel). Runs after the precision pass: every step then keeps the
    type its layer computes in, and the casts that pass inserted fuse too."""
    # Scan after scan as `fuse` does, but each scan visits only the nodes whose match can have
    # changed: a node that matched nothing grew no chain, so its match depends only on the
    # producers and readers of its own inputs and output. Rescanning every node would take a
    # scan per MAX_STEPS nodes of a long chain: quadratic.
    chains = _Chains(graph, keep)
    done: list[Match] = []
    visit = [node for node in graph.nodes if _pointwise_step(chains, node) is not None]
    while visit:
        matches, left_out = _matches(chains, visit, fuse_pointwise_chain)
        done.extend(matches)
        again = {id(n): n for n in chains.replace(matches) + left_out if chains.holds(n)}
        visit = sorted(
            (node for node in again.values() if _pointwise_step(chains, node) is not None),
            key=chains.position,
        )
    _replace(graph, done)


def fuse_pointwise_chain(chains: _Chains, node: Node) -> tuple[list[Node], Node] | None:
    """The pointwise layers that feed `node` and only it (directly or through each other),
    when `node` is the last of them: nothing pointwise reads its result alone."""
    if _pointwise_step(chains, node) is None or _feeds_pointwise(chains, node):
        return None
    members = {id(node): node}
    # Pass after pass over the members in the order they joined, each adding the producers
    # whose results only members read; a member whose every input has joined or never can is
    # left out of later passes (visiting it would change nothing).
    unsettled = [node]
    grown = True
    while grown and len(members) < MAX_STEPS:
        grown, kept, joined = False, [], []
        for member in unsettled:
            settled = True
            for value_id in member.inputs:
                producer = chains.producer.get(value_id)
                if producer is None or id(producer) in members or len(members) >= MAX_STEPS:
                    continue
                if value_id in chains.outputs or _pointwise_step(chains, producer) is None:
                    continue
                if all(id(reader) in members for reader in chains.readers[value_id]):
                    members[id(producer)] = producer
                    joined.append(producer)
                    grown = True
                else:
                    settled = False
            if not settled:
                kept.append(member)
        unsettled = kept + joined
    if len(members) < 2:
        return None
    chain = sorted(members.values(), key=chains.position)
    produced = {member.outputs[0] for member in chain}
    inputs = list(dict.fromkeys(v for m in chain for v in m.inputs if v not in produced))
    operand = {v: i for i, v in enumerate(inputs)}
    operand |= {m.outputs[0]: len(inputs) + j for j, m in enumerate(chain)}
    program = [
        replace(_pointwise_step(chains, m), operands=tuple(operand[v] for v in m.inputs))
        for m in chain
    ]
    name = f"PWN({', '.join(member.name for member in chain)})"
    fused = Node(name, "pointwise", encode_program(program), inputs, list(node.outputs))
    return chain, fused


def _pointwise_step(chains: _Chains, node: Node) -> Step | None:
    """The step that computes what `node` does (operands not yet set), when it can fuse."""
    if node.name in chains.keep or len(node.outputs) != 1:
        return None
    if chains.graph.values[node.outputs[0]].dtype not in FLOATS:
        return None
    if node.op == "elementwise" and node.attrs["op"] in BINARY_OPERATIONS:
        return Step(StepKind.ELEMENTWISE, node.attrs["op"], ())
    if node.op == "unary" and node.attrs["op"] in UNARY_OPERATIONS:
        return Step(StepKind.UNARY, node.attrs["op"], ())
    if node.op == "activation":  # its input has its output's type
        attrs = node.attrs
        return Step(StepKind.ACTIVATION, attrs["type"], (), attrs["alpha"], attrs["beta"])
    if (
        node.op == "cast"
        and node.attrs.get("from_type") is None
        and chains.graph.values[node.inputs[0]].dtype in CAST_SOURCES
    ):
        return Step(StepKind.CAST, node.attrs["to_type"], ())
    return None


def _feeds_pointwise(chains: _Chains, node: Node) -> bool:
    """Whether a fusable pointwise node alone reads `node`'s result (then it ends no chain)."""
    value_id = node.outputs[0]
    readers = chains.readers.get(value_id, [])
    return (
        value_id not in chains.outputs
        and len({id(reader) for reader in readers}) == 1
        and _pointwise_step(chains, readers[0]) is not None
    )

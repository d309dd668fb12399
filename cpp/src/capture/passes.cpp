// What a capture does with its program once recorded (Note [Captured programs] in
// launch/program.h): describe it, and the passes that rewrite it (Note [Program passes]).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "launch/program.h"

namespace bprop::tape {

namespace {
int64_t int_value(const Arg& a) {
  switch (a.bytes.size()) {
    case 1: {
      int8_t v;
      std::memcpy(&v, a.bytes.data(), 1);
      return v;
    }
    case 4: {
      int32_t v;
      std::memcpy(&v, a.bytes.data(), 4);
      return v;
    }
    default: {
      int64_t v = 0;
      std::memcpy(&v, a.bytes.data(), std::min<size_t>(a.bytes.size(), 8));
      return v;
    }
  }
}

double float_value(const Arg& a) {
  if (a.bytes.size() == sizeof(float)) {
    float v;
    std::memcpy(&v, a.bytes.data(), sizeof v);
    return v;
  }
  double v;
  std::memcpy(&v, a.bytes.data(), sizeof v);
  return v;
}

void print_array(std::ostream& out, const std::vector<int64_t>& values) {
  out << '[';
  for (size_t i = 0; i < values.size(); ++i) out << (i ? "," : "") << values[i];
  out << ']';
}

void print_buffer(std::ostream& out, const BufferPool::Ref& ref) {
  if (ref.slot < 0)
    out << "@0x" << std::hex << ref.where << std::dec;
  else
    out << 's' << ref.slot << '+' << ref.where;
}
}  // namespace

std::string describe(const Instr& instr) {
  std::ostringstream out;
  out << instr.name;
  if (instr.kernel < 0) {
    out << " (host)";
  } else {
    out << '(';
    for (size_t i = 0; i < instr.args.size(); ++i) {
      const Arg& a = instr.args[i];
      if (i) out << ", ";
      switch (a.kind) {
        case Arg::Kind::Int:
          out << int_value(a);
          break;
        case Arg::Kind::Float:
          out << float_value(a);
          break;
        case Arg::Kind::Bytes:
          out << '<' << a.bytes.size() << " bytes>";
          break;
        case Arg::Kind::Array:
          print_array(out, a.array);
          break;
        case Arg::Kind::Buffer:
          if (a.written) out << "out ";
          print_buffer(out, a.buffer);
          break;
        case Arg::Kind::Operand:
          if (a.written) out << "out ";
          out << dtype_name(a.dtype) << ' ';
          print_buffer(out, a.buffer);
          print_array(out, a.array);
          break;
      }
    }
    out << ')';
  }
  return out.str();
}

std::string describe(const std::vector<Instr>& program) {
  std::string out;
  for (const Instr& instr : program) out += describe(instr) + "\n";
  return out;
}

// Note [Program passes]
// Once a recording has ended, before its memory is planned, optimize() rewrites the program:
//
// 1. Dead launches go: a kernel launch whose every output is a slot of the capture's pool that
//    no later instruction reads and that is not alive at the end of the recording (so no
//    replay's caller can see it) does work nobody uses. Liveness is per slot and never
//    killed by a later write, so a launch stays whenever anything later might read any part
//    of what it wrote. Host steps are never dropped, and touch only what they hold (alive at
//    the end), so they keep nothing else alive.
// 2. Elementwise chains fuse: a unary or binary launch (or a chain already fused) whose output
//    slot is written by it alone and read by exactly one later unary or binary launch, over
//    the same values, whole and in place (not also as a row or a scalar), joins that launch as
//    one elementwise_chain (Note [Fused elementwise
//    chains] in kernels/elementwise.cpp): the intermediate never goes to memory. Its step
//    moves to the later launch's place, so it may not move past a host step or a write to any
//    of its inputs, and its inputs' spans stretch to that place before the memory is planned
//    (Note [Capture memory] in launch/tape.h). Every value's arithmetic is unchanged: fused
//    replays give eager's bits.
// 3. Copies forward: a plain copy (same dtype and layout) of a whole slot that one launch
//    wrote and nothing but the copy reads (a weight's gradient cloned for .grad, a chain's
//    result copied out) goes, and that launch writes the copy's destination instead, provided
//    the destination is a slot that nothing from that launch to the copy touches (not an
//    address outside the pool, which a view read between could reach from another start);
//    the destination's span grows back to the launch.
// 4. Pieces add in place: the gradient of a tensor cut into pieces (q, k, v split off one
//    projection) arrives as one zero-filled tensor per piece with the piece copied in, then
//    their sum. When every summed slot is that (filled once with zeros, then only copies of its
//    dtype into it, read by the sum alone), the sum adds each of them once (a tree of adds:
//    every operand and intermediate read once) and no element is written by two copies, the sum's
//    own slot is zero-filled where the first piece's was and each copy adds its piece into it
//    (add_scaled with alpha 1: 0 + p, the value the sum of p and zeros gives, -0 included).
//    The other zero fills and the sum go. When the pieces cover the sum's every element (q, k
//    and v are the whole projection), no zero fill is left either: each copy writes p + 0
//    into the sum (a binary add of a zero scalar: the same value as 0 + p, a -0 made +0),
//    without reading what it overwrites.
// 5. Products take their elementwise epilogue: a gemm whose output slot, contiguous (ldc = n),
//    nothing reads but one later elementwise launch or chain that reads it whole and in place
//    over the product's m x n values (a Row operand of n values: a bias), joins that launch as
//    one gemm_chain (Note [GEMM epilogues] in kernels/gemm.cpp): the product is written straight
//    into the chain's output and the chain runs on each block of its rows while they are in
//    cache; the product's own slot goes. (A residual added to a projection, a bias and an
//    activation, gelu's slope multiplied into the gradient coming back.) The product moves to
//    the later launch's place where nothing between writes A or B or is a host step (their
//    spans stretch there); else the chain moves to the product's place where nothing between
//    writes the chain's inputs or touches its output and no host step between can reach them
//    (the output's span starts there; a .grad binding sits between a weight's gradient product
//    and the next launch, and its hooks may change a weight). The chain's output must be a slot
//    apart from A, B and the chain's other operands, and no step may read it (x = x + f(p)):
//    the product overwrites it before the chain reads them. Same bits as unfused.
//
// BPROP_FUSION=0 in the environment when a step is recorded leaves its program as recorded.

namespace {

bool is_buffer(const Arg& a) { return a.kind == Arg::Kind::Buffer || a.kind == Arg::Kind::Operand; }

// Kernels that read the outputs they write: they add into them.
bool accumulates(const Instr& instr) {
  static const std::unordered_set<std::string> names = {"add_scaled", "scatter_add", "fold2d",
                                                        "scatter_add_rows"};
  return instr.kernel >= 0 && names.count(instr.name) != 0;
}

int64_t int_arg(const Arg& a) { return int_value(a); }

Arg int_arg_of(int64_t v) {
  Arg a;
  a.kind = Arg::Kind::Int;
  a.bytes.resize(sizeof v);
  std::memcpy(a.bytes.data(), &v, sizeof v);
  return a;
}

// Which kernel launches read and write each slot, by their index in the program.
struct Access {
  std::unordered_map<int64_t, std::vector<size_t>> readers, writers;  // by slot

  // The slot's only writer, if it has exactly one.
  std::optional<size_t> sole_writer(int64_t slot) const {
    const auto w = writers.find(slot);
    if (w == writers.end() || w->second.size() != 1) return std::nullopt;
    return w->second[0];
  }
  // Whether instruction k, and nothing else, reads the slot (through one argument or more).
  bool read_only_by(int64_t slot, size_t k) const {
    const auto r = readers.find(slot);
    if (r == readers.end()) return false;
    return std::all_of(r->second.begin(), r->second.end(), [k](size_t i) { return i == k; });
  }
};

Access access_of(const std::vector<Instr>& program) {
  Access access;
  for (size_t i = 0; i < program.size(); ++i) {
    const Instr& instr = program[i];
    if (instr.kernel < 0) continue;
    for (const Arg& a : instr.args) {
      if (!is_buffer(a) || a.buffer.slot < 0) continue;
      if (a.written) access.writers[a.buffer.slot].push_back(i);
      if (!a.written || accumulates(instr)) access.readers[a.buffer.slot].push_back(i);
    }
  }
  return access;
}

size_t drop_dead_launches(std::vector<Instr>& program, BufferPool& pool) {
  std::unordered_set<int64_t> read_later;
  std::vector<bool> keep(program.size(), true);
  size_t dropped = 0;
  for (size_t i = program.size(); i-- > 0;) {
    const Instr& instr = program[i];
    if (instr.kernel < 0) continue;
    bool writes = false, needed = false;
    for (const Arg& a : instr.args) {
      if (!is_buffer(a) || !a.written) continue;
      writes = true;
      if (a.buffer.slot < 0 || pool.held_to_the_end(a.buffer.slot) ||
          read_later.count(a.buffer.slot))
        needed = true;
    }
    if (writes && !needed) {
      keep[i] = false;
      ++dropped;
      continue;
    }
    for (const Arg& a : instr.args)
      if (is_buffer(a) && a.buffer.slot >= 0 && (!a.written || accumulates(instr)))
        read_later.insert(a.buffer.slot);
  }
  size_t out = 0;
  for (size_t i = 0; i < program.size(); ++i) {
    if (!keep[i]) continue;
    if (out != i) program[out] = std::move(program[i]);  // not onto itself: that empties it
    ++out;
  }
  program.resize(out);
  return dropped;
}

// An elementwise launch (unary, binary or a fused chain) as a chain: the form fusion joins.
struct ChainOperandRef {
  BufferPool::Ref buffer;
  bool written;
  kernels::ChainOperand::Layout layout;
};
struct Chain {
  DType dtype;
  int64_t count;  // values
  int64_t cols;   // the length of a Row operand's row; 1 if there is none
  std::vector<int64_t> steps;
  std::vector<ChainOperandRef> operands;
  int64_t temporaries = 0;
};

// The layout of an operand over `shape`, or nothing: contiguous, one row repeated (stride 0
// over the leading dimensions, contiguous over the rest: cols values), or one value.
std::optional<std::pair<kernels::ChainOperand::Layout, int64_t>> layout_of(
    const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  const size_t ndim = shape.size();
  // The contiguous tail: dimensions from `split` on have row-major strides.
  int64_t expected = 1;
  size_t split = ndim;
  while (split > 0) {
    const size_t d = split - 1;
    if (shape[d] != 1 && strides[d] != expected) break;
    expected *= shape[d];
    split = d;
  }
  bool leading_zero = true;
  for (size_t d = 0; d < split; ++d)
    if (shape[d] != 1 && strides[d] != 0) leading_zero = false;
  if (split == 0) return std::make_pair(kernels::ChainOperand::Full, int64_t{1});
  if (!leading_zero) return std::nullopt;
  if (expected == 1) return std::make_pair(kernels::ChainOperand::Scalar, int64_t{1});
  return std::make_pair(kernels::ChainOperand::Row, expected);
}

std::optional<Chain> chain_of(const Instr& instr) {
  if (instr.kernel < 0) return std::nullopt;
  const std::string name = instr.name;
  if (name == "elementwise_chain") {
    Chain c;
    c.dtype = static_cast<DType>(int_arg(instr.args[0]));
    c.count = int_arg(instr.args[1]) * int_arg(instr.args[2]);
    c.cols = int_arg(instr.args[2]);
    c.steps = instr.args[3].array;
    for (size_t i = 4; i + 1 < instr.args.size(); i += 2)
      c.operands.push_back(
          {instr.args[i].buffer, instr.args[i].written,
           static_cast<kernels::ChainOperand::Layout>(int_arg(instr.args[i + 1]))});
    for (size_t f = 0; f < c.steps.size(); ++f)
      if (f % kernels::ChainStep::kFields >= 2)
        c.temporaries = std::max(c.temporaries, -c.steps[f]);
    return c;
  }
  const bool binary = name == "binary";
  if (!binary && name != "unary") return std::nullopt;
  // unary(op, ndim, shape, out, in); binary(op, ndim, shape, out, a, b)
  const std::vector<int64_t>& shape = instr.args[2].array;
  Chain c;
  c.dtype = instr.args[3].dtype;
  if (c.dtype != DType::Float32 && c.dtype != DType::Float64) return std::nullopt;
  c.count = 1;
  for (int64_t s : shape) c.count *= s;
  if (c.count == 0) return std::nullopt;
  c.cols = 1;
  const size_t operands = binary ? 3 : 2;
  for (size_t k = 0; k < operands; ++k) {
    const Arg& a = instr.args[3 + k];
    if (a.dtype != c.dtype) return std::nullopt;
    const auto layout = layout_of(shape, a.array);
    if (!layout || (k == 0 && layout->first != kernels::ChainOperand::Full)) return std::nullopt;
    if (layout->first == kernels::ChainOperand::Row) {
      if (c.cols != 1 && c.cols != layout->second) return std::nullopt;
      c.cols = layout->second;
    }
    c.operands.push_back({a.buffer, k == 0, layout->first});
  }
  c.steps = {binary ? kernels::ChainStep::Binary : kernels::ChainStep::Unary,
             int_arg(instr.args[0]), 0, 1, binary ? 2 : 0};
  return c;
}

Instr instr_of(const Chain& c) {
  Instr instr;
  instr.kernel = kernel_index(std::string("elementwise_chain"));
  instr.name = "elementwise_chain";
  instr.args.push_back(int_arg_of(static_cast<int64_t>(c.dtype)));
  instr.args.push_back(int_arg_of(c.count / c.cols));
  instr.args.push_back(int_arg_of(c.cols));
  Arg steps;
  steps.kind = Arg::Kind::Array;
  steps.array = c.steps;
  instr.args.push_back(std::move(steps));
  for (const ChainOperandRef& o : c.operands) {
    Arg buffer;
    buffer.kind = Arg::Kind::Buffer;
    buffer.written = o.written;
    buffer.buffer = o.buffer;
    instr.args.push_back(std::move(buffer));
    instr.args.push_back(int_arg_of(o.layout));
  }
  return instr;
}

bool same_place(const BufferPool::Ref& a, const BufferPool::Ref& b) {
  return a.slot == b.slot && a.where == b.where;
}

// `first` then `second`, where second reads first's output `through` (a slot) only as that:
// first's output becomes a temporary.
std::optional<Chain> join(const Chain& first, const Chain& second, const BufferPool::Ref& through) {
  if (first.dtype != second.dtype || first.count != second.count) return std::nullopt;
  if (first.cols != 1 && second.cols != 1 && first.cols != second.cols) return std::nullopt;
  Chain c;
  c.dtype = first.dtype;
  c.count = first.count;
  c.cols = std::max(first.cols, second.cols);
  const int64_t through_temporary = -1 - (first.temporaries + second.temporaries);
  c.temporaries = first.temporaries + second.temporaries + 1;
  auto operand_index = [&](const ChainOperandRef& o) {
    for (size_t i = 0; i < c.operands.size(); ++i)
      if (same_place(c.operands[i].buffer, o.buffer) && c.operands[i].layout == o.layout) {
        c.operands[i].written = c.operands[i].written || o.written;
        return static_cast<int64_t>(i);
      }
    c.operands.push_back(o);
    return static_cast<int64_t>(c.operands.size() - 1);
  };
  auto append = [&](const Chain& part, int64_t temporary_base, bool is_first) {
    for (size_t s = 0; s < part.steps.size(); s += kernels::ChainStep::kFields) {
      c.steps.push_back(part.steps[s]);
      c.steps.push_back(part.steps[s + 1]);
      for (int f = 2; f < kernels::ChainStep::kFields; ++f) {
        const int64_t reg = part.steps[s + static_cast<size_t>(f)];
        const bool unused_b = f == 4 && part.steps[s] == kernels::ChainStep::Unary;
        if (reg < 0) {
          c.steps.push_back(reg - temporary_base);
        } else if (unused_b) {
          c.steps.push_back(0);
        } else {
          const ChainOperandRef& o = part.operands[static_cast<size_t>(reg)];
          if (same_place(o.buffer, through) &&
              (is_first ? o.written : o.layout == kernels::ChainOperand::Full))
            c.steps.push_back(through_temporary);
          else
            c.steps.push_back(operand_index(o));
        }
      }
    }
  };
  append(first, 0, true);
  append(second, first.temporaries, false);
  // Unused-b placeholders point at operand 0, which always exists.
  return c;
}

size_t fuse_elementwise_chains(std::vector<Instr>& program, BufferPool& pool) {
  size_t fused = 0;
  for (bool changed = true; changed;) {
    changed = false;
    const Access access = access_of(program);
    for (size_t j = 0; j < program.size() && !changed; ++j) {
      const std::optional<Chain> second = chain_of(program[j]);
      if (!second) continue;
      for (const ChainOperandRef& input : second->operands) {
        const int64_t slot = input.buffer.slot;
        if (input.written || slot < 0 || input.layout != kernels::ChainOperand::Full ||
            pool.held_to_the_end(slot))
          continue;
        const std::optional<size_t> writer = access.sole_writer(slot);
        if (!writer || *writer >= j || !access.read_only_by(slot, j)) continue;
        const size_t i = *writer;
        // second reads the slot only as `input`: whole, in place (not also as a row or a scalar,
        // which would read memory nobody writes once first's output is a temporary).
        bool only_as_input = true;
        for (const ChainOperandRef& o : second->operands)
          if (o.buffer.slot == slot &&
              !(same_place(o.buffer, input.buffer) && o.layout == kernels::ChainOperand::Full))
            only_as_input = false;
        if (!only_as_input) continue;
        const std::optional<Chain> first = chain_of(program[i]);
        if (!first) continue;
        // first's output is the slot, whole and in place.
        bool output_matches = false;
        for (const ChainOperandRef& o : first->operands)
          if (o.written) output_matches = same_place(o.buffer, input.buffer);
        if (!output_matches) continue;
        // first's step moves from i to j: nothing in between may write its inputs or be a host
        // step; its inputs' spans stretch to j below.
        bool movable = true;
        for (size_t k = i + 1; k < j && movable; ++k) {
          const Instr& between = program[k];
          if (between.kernel < 0) {
            movable = false;
            break;
          }
          for (const Arg& a : between.args) {
            if (!is_buffer(a) || !a.written) continue;
            for (const ChainOperandRef& o : first->operands)
              if (!o.written && a.buffer.slot == o.buffer.slot) movable = false;  // -1: any address
          }
        }
        if (!movable) continue;
        std::optional<Chain> joined = join(*first, *second, input.buffer);
        if (!joined) continue;
        for (const ChainOperandRef& o : first->operands)
          if (!o.written && o.buffer.slot >= 0) pool.extend_use(o.buffer.slot, program[j].at + 1);
        Instr fused_instr = instr_of(*joined);
        fused_instr.at = program[j].at;  // it runs where the later launch did
        program[j] = std::move(fused_instr);
        program.erase(program.begin() + static_cast<std::ptrdiff_t>(i));
        ++fused;
        changed = true;
        break;
      }
    }
  }
  return fused;
}

// A plain copy of a whole slot that only one launch wrote and nothing else reads: that launch
// writes the copy's destination instead.
size_t forward_copies(std::vector<Instr>& program, BufferPool& pool) {
  size_t forwarded = 0;
  for (bool changed = true; changed;) {
    changed = false;
    const Access access = access_of(program);
    for (size_t c = 0; c < program.size() && !changed; ++c) {
      if (program[c].kernel < 0 || std::string(program[c].name) != "copy") continue;
      // copy(ndim, shape, out, in)
      const std::vector<int64_t>& shape = program[c].args[1].array;
      const Arg& out = program[c].args[2];
      const Arg& in = program[c].args[3];
      const auto layout = layout_of(shape, in.array);
      if (out.dtype != in.dtype || out.array != in.array || !layout ||
          layout->first != kernels::ChainOperand::Full)
        continue;
      const int64_t slot = in.buffer.slot;
      int64_t count = 1;
      for (int64_t s : shape) count *= s;
      if (slot < 0 || in.buffer.where != 0 || pool.held_to_the_end(slot) ||
          static_cast<size_t>(count) * itemsize(in.dtype) != pool.used_bytes(slot))
        continue;
      const std::optional<size_t> writer = access.sole_writer(slot);
      if (!writer || *writer >= c || !access.read_only_by(slot, c)) continue;
      const size_t p = *writer;
      // The destination is a slot (an address outside the pool may be a view that anything
      // between reads through another start, which the arguments do not tell) that nothing from
      // the producer to the copy touches, the producer included.
      if (out.buffer.slot < 0) continue;
      bool clear = true;
      for (size_t k = p; k < c && clear; ++k) {
        if (program[k].kernel < 0) {  // host steps touch only what is alive at the end
          clear = !pool.held_to_the_end(out.buffer.slot);
          continue;
        }
        for (const Arg& a : program[k].args)
          clear = clear && !(is_buffer(a) && a.buffer.slot == out.buffer.slot);
      }
      if (!clear) continue;
      for (Arg& a : program[p].args)
        if (is_buffer(a) && a.buffer.slot == slot)
          a.buffer = {out.buffer.slot, out.buffer.where + a.buffer.where};
      pool.extend_use_back(out.buffer.slot, program[p].at);
      program.erase(program.begin() + static_cast<std::ptrdiff_t>(c));
      ++forwarded;
      changed = true;
    }
  }
  return forwarded;
}

// Note [Program passes], 5.
size_t fuse_gemm_epilogues(std::vector<Instr>& program, BufferPool& pool) {
  using Layout = kernels::ChainOperand::Layout;
  size_t fused = 0;
  for (bool changed = true; changed;) {
    changed = false;
    const Access access = access_of(program);
    for (size_t j = 0; j < program.size() && !changed; ++j) {
      const std::optional<Chain> chain = chain_of(program[j]);
      if (!chain) continue;
      for (size_t t = 0; t < chain->operands.size() && !changed; ++t) {
        const ChainOperandRef& input = chain->operands[t];
        const int64_t slot = input.buffer.slot;
        if (input.written || slot < 0 || input.layout != Layout::Full || pool.held_to_the_end(slot))
          continue;
        const std::optional<size_t> writer = access.sole_writer(slot);
        if (!writer || *writer >= j || !access.read_only_by(slot, j)) continue;
        const size_t i = *writer;
        const Instr& product = program[i];
        if (product.kernel < 0 || std::string(product.name) != "gemm") continue;
        // gemm(dtype, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc)
        const std::vector<Arg>& g = product.args;
        const int64_t m = int_arg(g[1]), n = int_arg(g[2]);
        if (static_cast<DType>(int_arg(g[0])) != chain->dtype || int_arg(g[11]) != n ||
            m * n != chain->count || (chain->cols != 1 && chain->cols != n) ||
            !same_place(g[10].buffer, input.buffer))
          continue;
        // The chain reads the slot only as `input`, and writes one operand: a slot apart from
        // A, B and every other operand.
        std::optional<size_t> output;
        bool apart = true;
        for (size_t u = 0; u < chain->operands.size(); ++u) {
          const ChainOperandRef& o = chain->operands[u];
          if (o.buffer.slot == slot && u != t) apart = false;
          if (!o.written) continue;
          if (output) apart = false;
          output = u;
        }
        if (!apart || !output) continue;
        const ChainOperandRef& out = chain->operands[*output];
        if (out.buffer.slot < 0 || out.layout != Layout::Full ||
            out.buffer.slot == g[4].buffer.slot || out.buffer.slot == g[7].buffer.slot)
          continue;
        for (size_t u = 0; u < chain->operands.size(); ++u)
          if (u != *output && chain->operands[u].buffer.slot == out.buffer.slot) apart = false;
        // Nor does a step read the output (x = x + f(product), one operand read and written):
        // it holds the product by then.
        for (size_t f = 0; f < chain->steps.size(); f += kernels::ChainStep::kFields) {
          const bool binary = chain->steps[f] == kernels::ChainStep::Binary;
          const int64_t reads[] = {chain->steps[f + 3], binary ? chain->steps[f + 4] : -1};
          for (const int64_t reg : reads)
            if (reg == static_cast<int64_t>(*output)) apart = false;
        }
        if (!apart) continue;
        // Where the joined launch runs: at j, the product moved there, when nothing in between
        // writes A or B (-1: any address) or is a host step; else at i, the chain moved there,
        // when nothing in between writes the chain's inputs or touches its output, and any host
        // step in between can't reach them (it touches only slots alive at the end).
        bool product_movable = true, chain_movable = true;
        for (size_t k = i + 1; k < j; ++k) {
          if (program[k].kernel < 0) {
            product_movable = false;
            for (const ChainOperandRef& o : chain->operands)
              if (o.buffer.slot < 0 || pool.held_to_the_end(o.buffer.slot)) chain_movable = false;
            continue;
          }
          for (const Arg& a : program[k].args) {
            if (!is_buffer(a)) continue;
            if (a.written &&
                (a.buffer.slot == g[4].buffer.slot || a.buffer.slot == g[7].buffer.slot))
              product_movable = false;
            if (a.buffer.slot == out.buffer.slot) chain_movable = false;
            for (const ChainOperandRef& o : chain->operands)
              if (a.written && a.buffer.slot == o.buffer.slot) chain_movable = false;
          }
        }
        if (!product_movable && !chain_movable) continue;
        const size_t at = product_movable ? j : i;
        // gemm_chain(dtype, m, n, k, a, rsa, csa, b, rsb, csb, output, steps, operands...):
        // the chain without `input`, whose reads become reads of the output.
        auto renumbered = [&](int64_t reg) {
          if (reg < 0) return reg;
          const int64_t r = reg == static_cast<int64_t>(t) ? static_cast<int64_t>(*output) : reg;
          return r > static_cast<int64_t>(t) ? r - 1 : r;
        };
        Instr joined;
        joined.kernel = kernel_index(std::string("gemm_chain"));
        joined.name = "gemm_chain";
        joined.at = program[at].at;
        // the dtype as an int64 (the gemm's is a DType's byte), the rest as the gemm had them
        joined.args.push_back(int_arg_of(int_arg(g[0])));
        joined.args.insert(joined.args.end(), g.begin() + 1, g.begin() + 10);
        joined.args.push_back(int_arg_of(renumbered(static_cast<int64_t>(*output))));
        Arg steps;
        steps.kind = Arg::Kind::Array;
        for (size_t f = 0; f < chain->steps.size(); ++f)
          steps.array.push_back(f % kernels::ChainStep::kFields >= 2 ? renumbered(chain->steps[f])
                                                                     : chain->steps[f]);
        joined.args.push_back(std::move(steps));
        for (size_t u = 0; u < chain->operands.size(); ++u) {
          if (u == t) continue;
          Arg buffer;
          buffer.kind = Arg::Kind::Buffer;
          buffer.written = chain->operands[u].written;
          buffer.buffer = chain->operands[u].buffer;
          joined.args.push_back(std::move(buffer));
          joined.args.push_back(int_arg_of(chain->operands[u].layout));
        }
        if (product_movable) {
          for (const size_t operand : {size_t{4}, size_t{7}})
            if (g[operand].buffer.slot >= 0) pool.extend_use(g[operand].buffer.slot, joined.at + 1);
        } else {
          pool.extend_use_back(out.buffer.slot, joined.at);
        }
        program[at] = std::move(joined);
        program.erase(program.begin() + static_cast<std::ptrdiff_t>(product_movable ? i : j));
        ++fused;
        changed = true;
      }
    }
  }
  return fused;
}

Arg float_arg_of(double v) {
  Arg a;
  a.kind = Arg::Kind::Float;
  a.bytes.resize(sizeof v);
  std::memcpy(a.bytes.data(), &v, sizeof v);
  return a;
}

// A copy(ndim, shape, out, in) made binary(Add, ndim, shape, out, in, a zero): out = in + 0.
void copy_plus_zero(Instr& copy, int binary_kernel) {
  // Read as any dtype's zero (8 zero bytes), by an operand with every stride 0.
  alignas(8) static const unsigned char kZeroBytes[8] = {};
  Arg op;
  op.kind = Arg::Kind::Int;
  const kernels::BinaryOp add = kernels::BinaryOp::Add;
  op.bytes.resize(sizeof add);
  std::memcpy(op.bytes.data(), &add, sizeof add);
  Arg zero = copy.args[3];
  zero.written = false;
  zero.buffer = {-1, reinterpret_cast<uintptr_t>(kZeroBytes)};
  std::fill(zero.array.begin(), zero.array.end(), int64_t{0});
  copy.kernel = binary_kernel;
  copy.name = kernel_table()[static_cast<size_t>(binary_kernel)].name;
  copy.args.insert(copy.args.begin(), op);
  copy.args.push_back(zero);
}

// A sum of zero-filled slots each holding pieces copied in, the pieces of all of them apart
// (the gradient of a tensor split into pieces): the sum is zero-filled, and each copy adds its
// piece into it; or, where the pieces cover the sum, writes its piece plus zero into it (Note
// [Program passes], 4).
size_t add_pieces_in_place(std::vector<Instr>& program, BufferPool& pool) {
  size_t merged = 0;
  const int zero_kernel = kernel_index(std::string("zero_bytes"));
  const int add_kernel = kernel_index(std::string("add_scaled"));
  const int binary_kernel = kernel_index(std::string("binary"));
  for (bool changed = true; changed;) {
    changed = false;
    const Access access = access_of(program);
    for (size_t c = 0; c < program.size() && !changed; ++c) {
      const std::optional<Chain> chain = chain_of(program[c]);
      if (!chain || chain->cols != 1) continue;
      bool adds = true;
      for (size_t s = 0; s < chain->steps.size(); s += kernels::ChainStep::kFields)
        adds = adds && chain->steps[s] == kernels::ChainStep::Binary &&
               chain->steps[s + 1] == static_cast<int64_t>(kernels::BinaryOp::Add);
      if (!adds) continue;
      {  // a sum tree: every operand but the sum, and every temporary, read exactly once
        std::unordered_map<int64_t, int> reads;
        for (size_t s = 0; s < chain->steps.size(); s += kernels::ChainStep::kFields) {
          ++reads[chain->steps[s + 3]];
          ++reads[chain->steps[s + 4]];
        }
        bool tree = true;
        for (const auto& [reg, n] : reads) tree = tree && n == 1;
        for (size_t k = 0; k < chain->operands.size(); ++k)
          if (!chain->operands[k].written) tree = tree && reads.count(static_cast<int64_t>(k));
        if (!tree) continue;
      }
      const size_t bytes = static_cast<size_t>(chain->count) * itemsize(chain->dtype);
      auto whole_slot = [&](const ChainOperandRef& o) {
        return o.layout == kernels::ChainOperand::Full && o.buffer.slot >= 0 &&
               o.buffer.where == 0 && pool.used_bytes(o.buffer.slot) == bytes;
      };
      const ChainOperandRef* sum = nullptr;
      std::vector<int64_t> pieces;  // the slots summed
      bool fits = true;
      for (const ChainOperandRef& o : chain->operands) {
        fits = fits && whole_slot(o);
        if (o.written)
          sum = &o;
        else
          pieces.push_back(o.buffer.slot);
      }
      if (!fits || !sum || pieces.size() < 2) continue;
      const auto sum_readers = access.readers.find(sum->buffer.slot);
      if (access.sole_writer(sum->buffer.slot) != c) continue;
      if (sum_readers != access.readers.end() && sum_readers->second.front() <= c) continue;
      // Each piece slot: zero-filled whole, then copies into it of its dtype, read by the sum
      // alone; every element written by at most one copy over all of them.
      std::vector<bool> written(static_cast<size_t>(chain->count), false);
      std::vector<size_t> zeros, copies;
      for (int64_t slot : pieces) {
        const auto w = access.writers.find(slot);
        if (pool.held_to_the_end(slot) || w == access.writers.end() ||
            !access.read_only_by(slot, c)) {
          fits = false;
          break;
        }
        const Instr& zero = program[w->second.front()];
        if (zero.kernel != zero_kernel || static_cast<size_t>(int_arg(zero.args[0])) != bytes ||
            zero.args[1].buffer.where != 0) {
          fits = false;
          break;
        }
        zeros.push_back(w->second.front());
        for (size_t k = 1; k < w->second.size() && fits; ++k) {
          const Instr& copy = program[w->second[k]];
          // copy(ndim, shape, out, in)
          if (std::string(copy.name) != "copy" || copy.args[2].buffer.slot != slot ||
              copy.args[2].dtype != chain->dtype || copy.args[3].dtype != chain->dtype ||
              copy.args[2].buffer.where % itemsize(chain->dtype) != 0) {
            fits = false;
            break;
          }
          // Mark the elements it writes.
          const std::vector<int64_t>& shape = copy.args[1].array;
          const std::vector<int64_t>& strides = copy.args[2].array;
          std::vector<int64_t> index(shape.size(), 0);
          int64_t count = 1;
          for (int64_t s : shape) count *= s;
          const int64_t start =
              static_cast<int64_t>(copy.args[2].buffer.where / itemsize(chain->dtype));
          for (int64_t e = 0; e < count && fits; ++e) {
            int64_t at = start;
            for (size_t d = 0; d < shape.size(); ++d) at += index[d] * strides[d];
            if (at < 0 || at >= chain->count || written[static_cast<size_t>(at)])
              fits = false;
            else
              written[static_cast<size_t>(at)] = true;
            for (size_t d = shape.size(); d-- > 0;) {
              if (++index[d] < shape[d]) break;
              index[d] = 0;
            }
          }
          copies.push_back(w->second[k]);
        }
        if (!fits) break;
      }
      if (!fits) continue;
      const size_t first_zero = *std::min_element(zeros.begin(), zeros.end());
      bool host_between = false;
      for (size_t k = first_zero; k < c; ++k) host_between = host_between || program[k].kernel < 0;
      if (host_between && pool.held_to_the_end(sum->buffer.slot)) continue;
      const BufferPool::Ref target = sum->buffer;
      const bool covered = std::all_of(written.begin(), written.end(), [](bool w) { return w; });
      std::vector<size_t> gone(zeros.begin(), zeros.end());
      for (size_t k : copies)  // each copy writes into the sum, where it wrote into its piece
        program[k].args[2].buffer = {target.slot, program[k].args[2].buffer.where};
      if (covered) {  // each copy writes its piece plus zero into the sum; no zero fill
        for (size_t k : copies) copy_plus_zero(program[k], binary_kernel);
        pool.extend_use_back(target.slot,
                             program[*std::min_element(copies.begin(), copies.end())].at);
      } else {  // the sum is zero-filled where the first piece was, and each copy adds into it
        program[first_zero].args[1].buffer = target;
        for (size_t k : copies) {
          Instr& copy = program[k];
          copy.kernel = add_kernel;
          copy.name = kernel_table()[static_cast<size_t>(add_kernel)].name;
          copy.args.push_back(float_arg_of(1.0));
        }
        pool.extend_use_back(target.slot, program[first_zero].at);
        gone.erase(std::find(gone.begin(), gone.end(), first_zero));
      }
      gone.push_back(c);
      std::sort(gone.rbegin(), gone.rend());
      for (size_t k : gone) program.erase(program.begin() + static_cast<std::ptrdiff_t>(k));
      merged += pieces.size();
      changed = true;
    }
  }
  return merged;
}

}  // namespace

PassReport optimize(std::vector<Instr>& program, BufferPool& pool) {
  PassReport report;
  const char* fusion = std::getenv("BPROP_FUSION");
  if (fusion && std::string(fusion) == "0") return report;
  report.dropped = drop_dead_launches(program, pool);
  report.fused = fuse_elementwise_chains(program, pool);
  report.forwarded = forward_copies(program, pool);
  report.epilogues = fuse_gemm_epilogues(program, pool);
  report.pieces = add_pieces_in_place(program, pool);
  // The slots whose launches the passes took away (a fused chain's intermediates, a forwarded
  // copy's source, a joined product's output) get no buffer.
  std::vector<bool> referred(pool.slot_count(), false);
  for (const Instr& instr : program)
    for (const Arg& a : instr.args)
      if (is_buffer(a) && a.buffer.slot >= 0) referred[static_cast<size_t>(a.buffer.slot)] = true;
  for (size_t slot = 0; slot < referred.size(); ++slot)
    if (!referred[slot] && !pool.held_to_the_end(static_cast<int64_t>(slot)))
      pool.unused(static_cast<int64_t>(slot));
  return report;
}

}  // namespace bprop::tape

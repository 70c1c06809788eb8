import time, json, collections
from azrlib.sandbox import Executor
from azrlib.tinyworld import ood
from azrlib.tinyworld.benchmark import save_benchmark
t = time.time()
ref = ood.reference_shapes()
print("reference shapes", len(ref), round(time.time() - t, 1), "s", flush=True)
cands = [ood.generate_ood_program(ood.OOD_SEED, i, ("int", "str", "list")[i % 3]) for i in range(600)]
print("first 600 candidates: in reference", sum(ood.returned_shape(s.program) in ref for s in cands), flush=True)
with Executor() as ex:
    bench = ood.build_ood_benchmark(ex, reference=ref)
print({k: len(v) for k, v in bench.items()}, round(time.time() - t, 1), "s")
for k, v in bench.items():
    print(k, collections.Counter(x.meta["returns"] for x in v), v[0].program)
save_benchmark("data/tinyworld/benchmark_ood.jsonl", bench)

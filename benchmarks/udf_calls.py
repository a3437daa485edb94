"""Python-side cost of the UDFs: per scalar call and per 10,000-row column. Prints figures only."""

import timeit

import dsxl
from dsxl import udfs as u


def per_call_us(fn, n=3000):
    fn()  # warm caches
    return min(timeit.repeat(fn, number=n, repeat=3)) / n * 1e6


def main() -> None:
    col = [[float(b)] for b in range(1, 10_001)]
    udf = per_call_us(lambda: u.DECODE_TPOT('H800', 128))
    print(f"DECODE_TPOT scalar     {udf:8.1f} us/call")
    # the same row in plain Python: the article's decode steps run on a prepared environment
    from dsxl.article import api
    from dsxl.chains.step import run
    gpu = dsxl.load_catalog().gpu("H800")
    env = {**api.model_env(), **api.gpu_env(gpu), "batch_size": 128}
    steps = api._decode_steps(True, True, False)
    plain = per_call_us(lambda: run(steps, env)["tpot_overlap_ms"])
    print(f"  same row, plain run  {plain:8.1f} us/call  (UDF / plain = {udf / plain:.1f}x)")
    refined = per_call_us(lambda: u.PREDICT_DECODE("H800", 128, 128, 4096), n=300)
    row = per_call_us(lambda: dsxl.predict("decode", "H800", ep=128, batch=128, kv_len=4096)["tpot_ms"], n=300)
    print(f"PREDICT_DECODE scalar  {refined:8.1f} us/call")
    print(f"  same row, predict()  {row:8.1f} us/call  (UDF / predict = {refined / row:.1f}x)")
    print(f"MAX_BATCH scalar       {per_call_us(lambda: u.MAX_BATCH('H20', 4, 3)):8.1f} us/call")
    print(f"MLA_FLOPS scalar       {per_call_us(lambda: u.MLA_FLOPS(1, 4383, 1, True)):8.1f} us/call")
    t = min(timeit.repeat(lambda: u.DECODE_TPOT("H800", col), number=3, repeat=3)) / 3 * 1e3
    print(f"DECODE_TPOT 10k column {t:8.1f} ms/call")


if __name__ == "__main__":
    main()

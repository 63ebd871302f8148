"""Log-mel feature speed on one core: seqlab.audio (torch.stft + its own filterbank) beside librosa,
on the same random audio. Prints the real-time factor (seconds of audio per second of compute) of
each, the ratio, and the largest difference between the two (they must agree within 1e-5).

    OMP_NUM_THREADS=1 python bench/logmel_speed.py                 # 16 kHz, 80 mels
    OMP_NUM_THREADS=1 python bench/logmel_speed.py --rate 8000 --mels 40

Target (issue 17): at least 1,000x real time on one core. Timings are the best of ``--repeats``
interleaved runs, as wall-clock time and as this process's CPU time (``time.process_time``): on a
shared machine the wall clock also counts the time other processes hold the core, CPU time does not.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from seqlab.audio.features import FeatureConfig, LogMel


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=int, default=16000)
    p.add_argument("--mels", type=int, default=80)
    p.add_argument("--seconds", type=float, default=10.0, help="length of each utterance")
    p.add_argument("--batch", type=int, default=16, help="utterances per call (seqlab computes a batch at once)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    import librosa

    c = FeatureConfig(sample_rate=args.rate, n_mels=args.mels)
    rng = np.random.default_rng(0)
    n = int(args.seconds * args.rate)
    audio = (0.1 * rng.standard_normal((args.batch, n))).astype(np.float32)
    wave, mask = torch.from_numpy(audio), torch.ones(args.batch, n, dtype=torch.bool)
    module = LogMel(c)
    total_audio = args.batch * args.seconds

    def ours() -> np.ndarray:
        with torch.no_grad():
            return module(wave, mask)[0].numpy()

    def theirs() -> np.ndarray:
        out = [librosa.feature.melspectrogram(y=y, sr=c.sample_rate, n_fft=c.fft_size, hop_length=c.hop_length,
                                              win_length=c.win_length, n_mels=c.n_mels, center=True,
                                              pad_mode="constant", power=2.0) for y in audio]
        return np.log(np.maximum(np.stack(out), c.floor)).transpose(0, 2, 1)

    diff = float(np.abs(ours() - theirs()).max())
    best = {"seqlab": float("inf"), "librosa": float("inf")}
    cpu = {"seqlab": float("inf"), "librosa": float("inf")}
    for _ in range(args.repeats):
        for name, fn in (("seqlab", ours), ("librosa", theirs)):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    rtf = {k: total_audio / v for k, v in best.items()}
    rtf_cpu = {k: total_audio / v for k, v in cpu.items()}
    print(f"{args.rate} Hz, {args.mels} mels, {c.win_length}/{c.hop_length}-sample window/hop, n_fft {c.fft_size}; "
          f"{args.batch} x {args.seconds:g} s of audio, 1 thread, best of {args.repeats}")
    for k in ("seqlab", "librosa"):
        print(f"{k:8s}: wall {best[k] * 1000:8.1f} ms = {rtf[k]:6.0f}x real time;  "
              f"CPU {cpu[k] * 1000:8.1f} ms = {rtf_cpu[k]:6.0f}x real time per core")
    print(f"seqlab / librosa speed: {rtf['seqlab'] / rtf['librosa']:.2f}x wall, {rtf_cpu['seqlab'] / rtf_cpu['librosa']:.2f}x CPU;  "
          f"max |difference| of log-mel: {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

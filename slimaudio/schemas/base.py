from slimaudio.config import Field, register

register("base", {
    "seed": Field(int, lo=0, doc="master seed for every random choice"),
    "sample_rate": Field(int, choices=[8000, 16000, 22050, 32000, 44100, 48000],
                         doc="pipeline rate; all audio is resampled to it on load"),
    "on_bad_audio": Field(str, choices=["skip", "fail"],
                          doc="skip-and-count a bad file (default) or stop on it"),
    "threads": Field(int, lo=1, hi=64, doc="CPU threads for latency measurement (one phone core)"),
    "latency": {  # how every study times its variants (slimaudio/latency.py)
        "burst": Field(int, lo=1, hi=100,
                       doc="calls per variant in each timing round; the fastest one counts"),
        "processes": Field(int, lo=0, hi=32,
                           doc="worker processes the rounds are spread over (0: the stage's own)"),
    },
    "bootstrap": {
        "resamples": Field(int, lo=100, hi=100000, doc="cluster-bootstrap resamples per interval"),
        "level": Field(float, lo=0.5, hi=0.999, doc="two-sided level of every interval"),
    },
})

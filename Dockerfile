# GPU image for azrlib (paper-scale presets). Build: docker build -t azrlib .
# Run:   docker run --gpus all --security-opt seccomp=unconfined --cap-add SYS_ADMIN -it azrlib
# (bubblewrap needs to create namespaces inside the container; without those flags the sandbox
#  falls back to Landlock + seccomp, which `azr sandbox-info` reports.)
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev build-essential git make bubblewrap libseccomp2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/azrlib
COPY requirements.lock pyproject.toml README.md ./
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip \
    && grep -v '^torch==' requirements.lock > /tmp/req.txt \
    && /opt/venv/bin/pip install torch==2.13.0 -r /tmp/req.txt
COPY . .
RUN /opt/venv/bin/pip install --no-deps -e .
ENV PATH=/opt/venv/bin:$PATH
CMD ["azr", "--help"]

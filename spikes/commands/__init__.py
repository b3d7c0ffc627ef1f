"""Subcommands of the ``spikes`` CLI: one module each, listed here with their one-line help.

A command module defines ``add_arguments(parser)`` and ``run(args) -> int`` and imports what it needs at its top.
The CLI imports a command's module only when that command is invoked (``spikes --help`` imports none), so listing
the commands stays fast and lava (which fixes the multiprocessing start method) is loaded only by commands that run it.
"""
COMMANDS: dict[str, tuple[str, str]] = {   # name -> (module in spikes.commands, help)
    "train": ("train", "train a model with a learning rule (--model conv_snn|mlp_snn|rsnn|stereospike|gt_network|"
                       "pkg.mod:factory, --rule bptt|eprop|gt; config file and/or flags; checkpoints, --resume, metrics log)"),
    "demo": ("demo", "the main job on embedded data: train the flagship models, deploy them to sim and lava-fixed, print "
                     "the sparsity comparison table and write an HTML report (about 5 min on 2 cores)"),
    "data": ("data", "event data: 'generate' the embedded sets into the cache, 'info FILE' summarises a recording"),
    "export": ("export", "export a trained checkpoint (any model) to NIR or to a quantised Lava/Loihi 2 network (with "
                         "chip-fit report)"),
    "run": ("run_cmd", "run a trained checkpoint (any model) on sim, lava-fixed, lava-float (or sim-float) and print "
                       "its task metric and per-layer firing"),
    "compare": ("compare", "compare firing-rate sparsity, synaptic ops, energy and accuracy across saved runs and backends"),
    "checkpoint": ("checkpoint", "show a checkpoint (model, rule, data, metrics) or upgrade a first-release checkpoint to "
                                 "the current format"),
    "stereo": ("stereo", "StereoSpike: train/evaluate the spiking U-Net for stereo depth and write the SNN-vs-ANN / "
                         "penalty report (front-end of spikes train)"),
    "eprop": ("eprop", "LIF/ALIF recurrent SNNs with e-prop (symmetric/random/adaptive) or BPTT on the cue task or digits "
                       "(front-end of spikes train)"),
    "gt": ("gt", "growth-transform spiking networks (local, backprop-less rule) on wine / breast_cancer / digits "
                 "(front-end of spikes train)"),
    "rules": ("rules", "which learning rule trained a network? 'zoo' trains a population per rule with its observables "
                       "logged, 'identify OBS_FILE' classifies the rule from them (Nayebi et al. 2020)"),
    "analyse": ("analyse", "analyses of trained networks, one action each: 'pruning RUN_DIR' (spike-and-slab "
                           "networks: prunable connections, sampled networks), 'interference'"),
}

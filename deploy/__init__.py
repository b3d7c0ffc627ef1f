"""Deploy spiking networks given as graphs (the IR: ``spikes.graph``): lowering with Lava's timing (``network``),
Loihi 2 quantisation (``quantize``; the number formats: ``fixed_point``), population kinds (``populations``; their
arithmetic, shared by ``sim`` and the Lava processes of ``processes``: ``kernels``, ``steps``, ``gt_kernels``),
backends behind one ``run`` (``backends``: ``sim``, ``lava-fixed``, ``lava-float``; Lava runs a batch as one packed
network, ``pack``), NIR interchange (``nir_io``) and a chip-fit report (``chipfit``).

Submodules are imported on use: ``import spikes.deploy`` loads none of them. Lava (the optional extra) is imported
only when a Lava graph is built (``lava_backend``, the kinds' ``lava_process``).
"""

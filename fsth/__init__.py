"""fsth: few-shot neural talking heads.

An implementation of "Few-Shot Adversarial Learning of Realistic Neural Talking Head Models"
(Zakharov et al., ICCV 2019). The stages, in data-flow order:

1. ``fsth.video``      read frames / fps / audio from videos and images, write mp4
2. ``fsth.landmarks``  68-point landmarks, the one crop policy, the one sketch renderer
3. ``fsth.models``     embedder E, AdaIN generator G, projection discriminator D
4. ``fsth.train``      meta-learning over many videos -> meta checkpoint; its input is built by ``fsth.dataset``
                       (videos -> face crops + landmarks), read as episodes by ``fsth.data``, its outputs
                       kept in a run directory by ``fsth.rundir``
5. ``fsth.shots``      photos or a video of a new person -> K shots (crops + landmark images at model size)
   ``fsth.embed``      K shots -> e_hat;  ``fsth.finetune`` -> person checkpoint
6. ``fsth.person``     photos / embedding / person file -> a person ready to render
   ``fsth.animate``    driving video or camera -> landmarks -> retargeted -> generated frames -> mp4
7. ``fsth.metrics``    SSIM, PSNR, L1, CSIM, AKD, FID by name;  ``fsth.evaluate``: the protocols

Importing ``fsth`` is cheap: heavy libraries (torch, cv2, dlib) load in the stage modules.
"""

__version__ = "0.1.0"

"""The ``toeplitz-conv`` command (:mod:`.main`), its layer flags (:mod:`.flags`), its
demo (:mod:`.demo`) and ``toeplitz-conv compile`` (:mod:`.precompile`): the top of the
package, which may import every other subpackage (on use, so that ``--help`` is quick).
"""

from .main import main

__all__ = ["main"]

//! The hardened EROFS reader. (Being written: see issue 2.)

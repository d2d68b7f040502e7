//! The EROFS writer. (Being written: see issue 2.)

//! Building a tree from a directory on disk. (Being written: see issue 2.)

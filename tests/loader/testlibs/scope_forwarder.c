/* Defines nothing: a library that only pulls in others (as libtorch.so.1.13 does). Which
 * ones is decided by the target's link libraries. */

/* placeholder */ typedef int nnc_placeholder_types;

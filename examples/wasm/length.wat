;; A pardag wasm step: outputs {"bytes": N}, N being the length of the input JSON text.
;;
;; The ABI every wasm step follows (no WASI, no imports):
;;   memory            exported linear memory
;;   alloc(len) -> ptr pardag asks for len bytes and writes the inputs JSON (UTF-8) there
;;   run(ptr, len) -> i64
;;                     reads the inputs JSON at ptr..ptr+len and returns where its output
;;                     JSON is: (out_ptr << 32) | out_len
;; Languages that compile to wasm (Rust, C, Zig, AssemblyScript) export the same three
;; names; this one is hand-written WebAssembly text so that it needs no toolchain.
(module
  (memory (export "memory") 1)
  ;; the output's prefix lives at 16; the digits follow it
  (data (i32.const 16) "{\"bytes\": ")

  ;; a bump allocator: hands out memory after the last block, growing memory as needed
  (global $next (mut i32) (i32.const 1024))
  (func (export "alloc") (param $len i32) (result i32)
    (local $ptr i32) (local $end i32)
    (local.set $ptr (global.get $next))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (block $done
      (loop $grow
        (br_if $done (i32.le_u (local.get $end) (i32.shl (memory.size) (i32.const 16))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (global.set $next (local.get $end))
    (local.get $ptr))

  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (local $n i32) (local $end i32) (local $at i32)
    ;; where the last digit goes: count the digits of len (at least one)
    (local.set $end (i32.const 27))
    (local.set $n (local.get $len))
    (block $counted
      (loop $count
        (br_if $counted (i32.lt_u (local.get $n) (i32.const 10)))
        (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
        (local.set $end (i32.add (local.get $end) (i32.const 1)))
        (br $count)))
    ;; write the digits right to left, then the closing brace
    (local.set $n (local.get $len))
    (local.set $at (local.get $end))
    (loop $write
      (local.set $at (i32.sub (local.get $at) (i32.const 1)))
      (i32.store8 (local.get $at)
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $write (i32.gt_u (local.get $at) (i32.const 26))))
    (i32.store8 (local.get $end) (i32.const 125))
    ;; out_ptr = 16, out_len = end + 1 - 16
    (i64.or
      (i64.shl (i64.const 16) (i64.const 32))
      (i64.extend_i32_u (i32.sub (i32.add (local.get $end) (i32.const 1)) (i32.const 16))))))

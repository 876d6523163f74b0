# kvmfleet's KVM probe guest: a 512-byte boot sector whose only job is to show, in memory the
# host reads back through libvirt (virDomainMemoryPeek), that guest code really ran, and ran at a
# useful speed. Some nested, paravirtualised KVMs start a guest whose vCPU then crawls or never
# executes: the firmware alone (16/32-bit code) may still run there, so the work is done in
# 64-bit mode with paging on, as an operating system runs.
#
# Rebuild (test/vms/kvm-probe.test.ts checks that src/vms/kvm-probe.ts holds these bytes):
#   as --64 -o bs.o boot-sector.S && ld -Ttext 0x7c00 --oformat binary -o bs.bin bs.o
#
# Memory written, at physical 0x9000 (read by the host):
#   +0  "KVMFLEET" written last, when the work is done
#   +8  the xorshift32 value after ROUNDS rounds from the seed
#   +12 the seed, echoed
#   +16 0x04100000 once every page from 1 MiB to 65 MiB has been written (first phase)
# The seed is patched in by the host at `seed` (offset 0x118) before each probe.
    .code16
    .globl _start
_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw $0x7c00, %sp
    movw $0x1000, %di            # zero PML4, PDPT, PD at 0x1000-0x3fff
    movw $0x1800, %cx
    rep stosw
    movl $0x2003, 0x1000         # PML4[0] -> PDPT (present, writable)
    movl $0x3003, 0x2000         # PDPT[0] -> PD
    movl $0x3000, %edi           # PD: 512 2-MiB pages, identity map of the first GiB
    movl $0x83, %eax
    movw $512, %cx
1:  movl %eax, (%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 1b
    movl $0x1000, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax              # CR4.PAE
    movl %eax, %cr4
    movl $0xc0000080, %ecx       # EFER.LME
    rdmsr
    orl $0x100, %eax
    wrmsr
    lgdtl gdtr
    movl %cr0, %eax
    orl $0x80000001, %eax        # CR0.PG | CR0.PE: straight to long mode
    movl %eax, %cr0
    ljmpl $0x08, $long_mode
    .code64
long_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl seed, %eax
    movl %eax, 0x900c
    movq $0x100000, %rdi         # phase 1: write every 4 KiB page of 1-65 MiB
2:  movl %eax, (%rdi)
    addq $4096, %rdi
    cmpq $0x4100000, %rdi
    jb 2b
    movl %edi, 0x9010
    movl $0x2000000, %ecx        # phase 2: ROUNDS = 2^25 rounds of xorshift32
3:  movl %eax, %edx
    shll $13, %edx
    xorl %edx, %eax
    movl %eax, %edx
    shrl $17, %edx
    xorl %edx, %eax
    movl %eax, %edx
    shll $5, %edx
    xorl %edx, %eax
    decl %ecx
    jnz 3b
    movl %eax, 0x9008
    movabsq $0x5445454c464d564b, %rax  # "KVMFLEET"
    movq %rax, 0x9000
halt:
    hlt
    jmp halt
    .p2align 3
gdt:
    .quad 0
    .quad 0x00209a0000000000     # 64-bit code segment
    .quad 0x0000920000000000     # data segment
gdtr:
    .word gdtr - gdt - 1
    .long gdt
    .p2align 3
seed:
    .long 0
    .org 510
    .word 0xaa55

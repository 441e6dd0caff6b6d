#include "textflag.h"

// func markBlocks(b []byte, q []uint64) (special bool)
//
// For each 64-byte block: four 16-byte loads; PCMPEQB with a vector of
// '"' and PMOVMSKB give 16 quote bits each, gathered into one word of q.
// A byte is special when it equals '\\' (PCMPEQB) or is at most 0x1f
// (PMINUB with 0x1f leaves it unchanged); X11 collects them.
TEXT ·markBlocks(SB), NOSPLIT, $0-49
	MOVQ b_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ q_len+32(FP), CX
	MOVQ $0x2222222222222222, AX
	MOVQ AX, X8
	PUNPCKLQDQ X8, X8
	MOVQ $0x5c5c5c5c5c5c5c5c, AX
	MOVQ AX, X9
	PUNPCKLQDQ X9, X9
	MOVQ $0x1f1f1f1f1f1f1f1f, AX
	MOVQ AX, X10
	PUNPCKLQDQ X10, X10
	PXOR X11, X11
	TESTQ CX, CX
	JZ done

loop:
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3

	MOVO X0, X4
	PCMPEQB X9, X4
	POR X4, X11
	MOVO X0, X5
	PMINUB X10, X5
	PCMPEQB X0, X5
	POR X5, X11
	PCMPEQB X8, X0
	PMOVMSKB X0, AX

	MOVO X1, X4
	PCMPEQB X9, X4
	POR X4, X11
	MOVO X1, X5
	PMINUB X10, X5
	PCMPEQB X1, X5
	POR X5, X11
	PCMPEQB X8, X1
	PMOVMSKB X1, BX

	MOVO X2, X4
	PCMPEQB X9, X4
	POR X4, X11
	MOVO X2, X5
	PMINUB X10, X5
	PCMPEQB X2, X5
	POR X5, X11
	PCMPEQB X8, X2
	PMOVMSKB X2, DX

	MOVO X3, X4
	PCMPEQB X9, X4
	POR X4, X11
	MOVO X3, X5
	PMINUB X10, X5
	PCMPEQB X3, X5
	POR X5, X11
	PCMPEQB X8, X3
	PMOVMSKB X3, R8

	SHLQ $16, BX
	ORQ BX, AX
	SHLQ $32, DX
	ORQ DX, AX
	SHLQ $48, R8
	ORQ R8, AX
	MOVQ AX, (DI)

	ADDQ $64, SI
	ADDQ $8, DI
	DECQ CX
	JNZ loop

done:
	PMOVMSKB X11, AX
	TESTL AX, AX
	SETNE special+48(FP)
	RET
